using System.Net;
using System.Threading.Channels;

namespace Neraca.Tests.Observability;

/// <summary>A real HTTP endpoint on loopback standing in for the outside world (a chat webhook, an OTLP collector):
/// answers 200 to everything and keeps what it received.</summary>
public sealed class TestHttpReceiver : IAsyncDisposable
{
    readonly HttpListener _listener = new();
    readonly Channel<ReceivedRequest> _received = Channel.CreateUnbounded<ReceivedRequest>();
    readonly List<ReceivedRequest> _all = [];
    readonly Task _loop;

    readonly int _status;

    /// <param name="status">What every request is answered with (a failing webhook receiver answers 500).</param>
    public TestHttpReceiver(int status = 200)
    {
        _status = status;
        for (var attempt = 0; ; attempt++)
        {
            Port = Infrastructure.ProcessRunner.FreePort();
            _listener.Prefixes.Clear();
            _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            try
            {
                _listener.Start();
                break;
            }
            catch (HttpListenerException) when (attempt < 5)
            {
            }
        }
        _loop = Task.Run(LoopAsync);
    }

    public int Port { get; }
    public string Url => $"http://127.0.0.1:{Port}";

    public IReadOnlyList<ReceivedRequest> All
    {
        get { lock (_all) return [.. _all]; }
    }

    /// <summary>The next request, or a failure after <paramref name="timeout"/> (a deadline for a message that is due,
    /// not a measurement).</summary>
    public async Task<ReceivedRequest> NextAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            return await _received.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"nothing was received within {timeout.TotalSeconds} s");
        }
    }

    async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            var request = new ReceivedRequest(context.Request.HttpMethod, context.Request.Url!.AbsolutePath,
                context.Request.ContentType, body.ToArray());
            lock (_all) _all.Add(request);
            await _received.Writer.WriteAsync(request);
            context.Response.StatusCode = _status;
            context.Response.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        await _loop;
    }
}

public sealed record ReceivedRequest(string Method, string Path, string? ContentType, byte[] Body)
{
    public string Text => System.Text.Encoding.UTF8.GetString(Body);
}
