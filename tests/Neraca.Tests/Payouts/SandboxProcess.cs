using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Payouts;

/// <summary><c>neraca sandbox payouts --port N</c> as its own process, the way tests, the benchmark and demos run it.</summary>
public sealed class SandboxProcess : IAsyncDisposable
{
    readonly Process _process;
    readonly StringBuilder _output = new();

    SandboxProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Uri BaseAddress { get; }

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    void Append(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
    }

    public static async Task<SandboxProcess> StartAsync(int port, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { ServerProcess.ServerDll, "sandbox", "payouts", "--port", port.ToString(CultureInfo.InvariantCulture) }.Concat(args))
            info.ArgumentList.Add(a);
        var sandbox = new SandboxProcess(Process.Start(info) ?? throw new InvalidOperationException("could not start the sandbox"),
            new Uri($"http://127.0.0.1:{port}"));
        using var http = new HttpClient { BaseAddress = sandbox.BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        await Polling.Eventually(async () => sandbox._process.HasExited || await HealthyAsync(http), "the sandbox answers /health");
        if (sandbox._process.HasExited) throw new InvalidOperationException($"the sandbox exited with {sandbox._process.ExitCode}: {sandbox.Output}");
        return sandbox;
    }

    static async Task<bool> HealthyAsync(HttpClient http)
    {
        try { return (await http.GetAsync("/health")).IsSuccessStatusCode; }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { return false; }
    }

    /// <summary>What the sandbox actually paid: one entry per payment, with the external id (our provider key).</summary>
    public async Task<IReadOnlyList<JsonNode>> PaidAsync()
    {
        using var http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        var body = JsonNode.Parse(await http.GetStringAsync("/sandbox/paid"))!;
        return body["data"]!.AsArray().Select(p => p!).ToList();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
