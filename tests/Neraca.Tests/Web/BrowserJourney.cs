using System.Text.Json;
using PuppeteerSharp;

namespace Neraca.Tests.Web;

/// <summary>Debian's chromium, headless, driven by PuppeteerSharp with no browser download. One per test class.</summary>
public static class Chromium
{
    public const string Path = "/usr/bin/chromium";

    public static async Task<IBrowser> LaunchAsync()
    {
        if (!File.Exists(Path))
            throw new InvalidOperationException($"The web tests need Debian's chromium at {Path}: apt-get install -y chromium "
                + "(scripts/test.sh installs it when missing).");
        return await Puppeteer.LaunchAsync(new LaunchOptions
        {
            ExecutablePath = Path,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--lang=en-US"],
            Timeout = 60_000,
        });
    }
}

/// <summary>One user's visit in its own browser context (its own cookies), recording everything a journey must not
/// have: console errors, page errors, failed requests, and every URL the page asked for (only the server under test
/// may be reached). On failure, <see cref="RunAsync"/> saves a screenshot to a temporary folder and names it.</summary>
public sealed class BrowserJourney : IAsyncDisposable
{
    /// <summary>Set to a folder to keep a screenshot of every view a journey passes (docs/screenshots was made so).</summary>
    public const string ScreenshotsVariable = "NERACA_WEB_SCREENSHOTS";
    public static readonly string FailureFolder = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "neraca-web-screenshots");

    readonly IBrowserContext _context;
    readonly Uri _base;
    readonly string _name;
    readonly List<string> _problems = [];
    readonly List<string> _requested = [];
    readonly HashSet<string> _expectedStatusErrors = [];

    BrowserJourney(IBrowserContext context, IPage page, Uri baseAddress, string name)
    {
        _context = context;
        Page = page;
        _base = baseAddress;
        _name = name;
        page.Console += (_, e) =>
        {
            if (e.Message.Type is ConsoleType.Error or ConsoleType.Warning) lock (_problems) _problems.Add($"console {e.Message.Type}: {e.Message.Text} ({e.Message.Location?.URL})");
        };
        page.PageError += (_, e) => { lock (_problems) _problems.Add("page error: " + e.Message); };
        page.RequestFailed += (_, e) => { lock (_problems) _problems.Add($"request failed: {e.Request.Url} {e.Request.FailureText}"); };
        page.Request += (_, e) => { lock (_requested) _requested.Add(e.Request.Url); };
    }

    public IPage Page { get; }

    public IReadOnlyList<string> Requested
    {
        get { lock (_requested) return [.. _requested]; }
    }

    public static async Task<BrowserJourney> StartAsync(IBrowser browser, Uri baseAddress, string name, string? language = null)
    {
        var context = await browser.CreateBrowserContextAsync();
        var page = await context.NewPageAsync();
        page.DefaultTimeout = 20_000;
        page.DefaultNavigationTimeout = 20_000;
        if (language is not null) await page.SetExtraHttpHeadersAsync(new Dictionary<string, string> { ["Accept-Language"] = language });
        await page.SetViewportAsync(new ViewPortOptions { Width = 1200, Height = 900 });
        return new BrowserJourney(context, page, baseAddress, name);
    }

    /// <summary>Runs the journey; on failure saves a screenshot and adds its path to the failure.</summary>
    public async Task RunAsync(Func<BrowserJourney, Task> steps)
    {
        try
        {
            await steps(this);
            AssertClean();
        }
        catch (Exception e) when (e is not ScreenshotSavedException)
        {
            Directory.CreateDirectory(FailureFolder);
            var file = System.IO.Path.Combine(FailureFolder, $"{_name}-{DateTime.UtcNow:HHmmss}.png");
            try
            {
                await Page.ScreenshotAsync(file, new ScreenshotOptions { FullPage = true });
            }
            catch (PuppeteerException)
            {
                file = "(no screenshot: the page is gone)";
            }
            throw new ScreenshotSavedException($"Journey '{_name}' failed at {Page.Url}; screenshot: {file}", e);
        }
    }

    /// <summary>Opens <paramref name="path"/> and returns the document's HTTP status.</summary>
    public async Task<int> GotoAsync(string path)
    {
        var response = await Page.GoToAsync(new Uri(_base, path).ToString(), WaitUntilNavigation.Load);
        return (int)response.Status;
    }

    /// <summary>This document answers <paramref name="status"/> on purpose (a not-found page): Chromium's console line
    /// for it is expected, not a problem.</summary>
    public void ExpectStatus(int status) => _expectedStatusErrors.Add($"status of {status}");

    /// <summary>Clicks and waits for the page it leads to (a link or a form's submit button).</summary>
    public async Task<int> ClickAndWaitAsync(string selector)
    {
        var navigation = Page.WaitForNavigationAsync(new NavigationOptions { WaitUntil = [WaitUntilNavigation.Load] });
        await Page.ClickAsync(selector);
        var response = await navigation;
        return response is null ? 0 : (int)response.Status;
    }

    public async Task TypeAsync(string selector, string text)
    {
        await Page.FocusAsync(selector);
        await Page.Keyboard.TypeAsync(text);
    }

    public Task<string> TextAsync(string selector) => Page.EvaluateFunctionAsync<string>("s => document.querySelector(s)?.innerText ?? ''", selector);

    public Task<string[]> TextsAsync(string selector) =>
        Page.EvaluateFunctionAsync<string[]>("s => [...document.querySelectorAll(s)].map(e => e.innerText.trim())", selector);

    public async Task SignInOperatorAsync(string apiKey)
    {
        await GotoAsync("/operator/sign-in");
        await TypeAsync("#api-key", apiKey);
        Assert.Equal(200, await ClickAndWaitAsync("main form button[type=submit]"));
    }

    /// <summary>Saves a named screenshot when <see cref="ScreenshotsVariable"/> names a folder.</summary>
    public async Task ScreenshotAsync(string view)
    {
        if (Environment.GetEnvironmentVariable(ScreenshotsVariable) is not { Length: > 0 } folder) return;
        Directory.CreateDirectory(folder);
        await Page.ScreenshotAsync(System.IO.Path.Combine(folder, view + ".png"), new ScreenshotOptions { FullPage = true });
    }

    /// <summary>Bytes the current page loaded (document and every resource, decoded) and the URLs it loaded them from.</summary>
    public async Task<(long Bytes, string[] Urls)> WeightAsync()
    {
        var json = await Page.EvaluateExpressionAsync<JsonElement>("""
            (() => {
              const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
              return { bytes: entries.reduce((s, e) => s + (e.decodedBodySize || 0), 0), urls: entries.map(e => e.name) };
            })()
            """);
        return (json.GetProperty("bytes").GetInt64(), json.GetProperty("urls").EnumerateArray().Select(u => u.GetString()!).ToArray());
    }

    public void AssertClean()
    {
        string[] problems;
        lock (_problems) problems = _problems.Where(p => !_expectedStatusErrors.Any(s => p.Contains(s, StringComparison.Ordinal))).ToArray();
        Assert.True(problems.Length == 0, "The journey had console errors or failed requests:\n" + string.Join("\n", problems));
        var foreign = Requested.Where(u => !u.StartsWith(_base.GetLeftPart(UriPartial.Authority) + "/", StringComparison.Ordinal)).ToArray();
        Assert.True(foreign.Length == 0, "The page reached beyond the server under test: " + string.Join(", ", foreign));
    }

    public async ValueTask DisposeAsync() => await _context.CloseAsync();
}

public sealed class ScreenshotSavedException(string message, Exception inner) : Exception(message, inner);
