using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Neraca.Tests.Infrastructure;

/// <summary>The server as operators run it: <c>dotnet Neraca.Server.dll</c> in its own process, configured by
/// arguments and environment variables, stopped with a real SIGTERM.</summary>
public sealed class ServerProcess : IAsyncDisposable
{
    public static readonly string ServerDll = Path.Combine(AppContext.BaseDirectory, "Neraca.Server.dll");

    readonly Process _process;
    readonly StringBuilder _output = new();

    ServerProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Uri BaseAddress { get; }
    public int Id => _process.Id;

    /// <summary>Standard output and error so far.</summary>
    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    void Append(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
    }

    /// <summary>Starts <c>serve</c> on a loopback port (a free one unless given: a restarted server comes back on its
    /// old one) and waits until <c>/health/ready</c> answers.</summary>
    public static async Task<ServerProcess> StartAsync(IEnumerable<string> args, IDictionary<string, string>? env = null, int? port = null)
    {
        port ??= ProcessRunner.FreePort();
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { ServerDll, "--urls", $"http://127.0.0.1:{port}", "--Logging:LogLevel:Default=Warning", "--Payouts:AllowBuiltInSandbox=true" }.Concat(args))
            info.ArgumentList.Add(a);
        if (env is not null) foreach (var (k, v) in env) info.Environment[k] = v;
        var server = new ServerProcess(Process.Start(info) ?? throw new InvalidOperationException("could not start the server"),
            new Uri($"http://127.0.0.1:{port}"));
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            await Polling.Eventually(async () => server._process.HasExited || await ReadyAsync(http), "the server process answers /health/ready", TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException e)
        {
            await server.DisposeAsync();
            var output = server.Output;
            throw new TimeoutException($"{e.Message} The server's output ended with:\n{output[Math.Max(0, output.Length - 4000)..]}", e);
        }
        if (server._process.HasExited)
            throw new InvalidOperationException($"the server exited with {server._process.ExitCode}: {server.Output}");
        return server;
    }

    public HttpClient CreateClient(string? apiKey = null)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (apiKey is not null) client.DefaultRequestHeaders.Authorization = new("Bearer", apiKey);
        return client;
    }

    /// <summary>Sends SIGTERM (what an orchestrator sends to stop a replica).</summary>
    public Task TerminateAsync() => ProcessRunner.RunAsync("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]);

    /// <summary>Waits for the process to exit; its exit code, or null when it did not exit in time.</summary>
    public async Task<int?> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try { await _process.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { return null; }
        return _process.ExitCode;
    }

    static async Task<bool> ReadyAsync(HttpClient http)
    {
        try { return (await http.GetAsync("/health/ready")).IsSuccessStatusCode; }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { return false; }
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
