using System.Diagnostics;
using System.Globalization;

namespace Neraca.Bench;

/// <summary>The Neraca server as a real child process (<c>dotnet Neraca.Server.dll serve</c>), as it runs in production.</summary>
public sealed class ServerProcess : IAsyncDisposable
{
    const int OutputLinesKept = 40;
    readonly Process _process;
    readonly Queue<string> _lastLines = new();

    ServerProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }
    public int Pid => _process.Id;

    public static async Task<ServerProcess> StartAsync(string dll, string database, string apiKey, IEnumerable<string> extraArgs,
        IReadOnlyDictionary<string, string> environment, CancellationToken ct)
    {
        if (!File.Exists(dll)) throw new FileNotFoundException($"server not built: {dll} (dotnet build -c Release src/Neraca.Server)", dll);
        var port = Neraca.Tests.Infrastructure.ProcessRunner.FreePort();
        var url = $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}";
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])[dll, "serve", "--database", database, "--urls", url, "--bootstrap-api-key", apiKey, "--Logging:LogLevel:Default=Warning",
                     "--Payouts:AllowBuiltInSandbox=true"])
            info.ArgumentList.Add(a);
        foreach (var a in extraArgs) info.ArgumentList.Add(a);
        foreach (var (name, value) in environment) info.Environment[name] = value;
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start the server");
        var server = new ServerProcess(process, new Uri(url));
        process.OutputDataReceived += (_, e) => server.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => server.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await server.WaitReadyAsync(ct);
        return server;
    }

    async Task WaitReadyAsync(CancellationToken ct)
    {
        using var http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = Stopwatch.GetTimestamp() + 60 * Stopwatch.Frequency;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"server exited with {_process.ExitCode}:\n{LastOutput}");
            try
            {
                using var response = await http.GetAsync("/health/ready", ct);
                if (response.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested) { }
            await Task.Delay(200, ct);
        }
        throw new TimeoutException($"server not ready after 60 s:\n{LastOutput}");
    }

    public string LastOutput
    {
        get { lock (_lastLines) return string.Join('\n', _lastLines); }
    }

    void Keep(string? line)
    {
        if (line is null) return;
        lock (_lastLines)
        {
            _lastLines.Enqueue(line);
            if (_lastLines.Count > OutputLinesKept) _lastLines.Dequeue();
        }
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

/// <summary>Peak resident memory of a process during a run, from <c>/proc/PID/status</c>: VmHWM after resetting it
/// (writing 5 to <c>/proc/PID/clear_refs</c>), and VmRSS sampled every 100 ms in case the reset is not allowed.</summary>
public sealed class RssMonitor : IAsyncDisposable
{
    readonly int _pid;
    readonly CancellationTokenSource _stop = new();
    readonly Task _sampling;
    long _peakKb;

    RssMonitor(int pid)
    {
        _pid = pid;
        try { File.WriteAllText($"/proc/{pid}/clear_refs", "5"); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        _sampling = SampleAsync();
    }

    public static RssMonitor Start(int pid) => new(pid);

    async Task SampleAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        try
        {
            do { _peakKb = Math.Max(_peakKb, ReadKb(_pid, "VmRSS:")); }
            while (await timer.WaitForNextTickAsync(_stop.Token));
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Stops sampling; the peak in MiB.</summary>
    public async Task<double> StopAsync()
    {
        await _stop.CancelAsync();
        await _sampling;
        return Math.Max(_peakKb, ReadKb(_pid, "VmHWM:")) / 1024.0;
    }

    static long ReadKb(int pid, string field)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith(field, StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(field.Length).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
        }
        catch (IOException) { }
        return 0;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested) await StopAsync();
        _stop.Dispose();
    }
}
