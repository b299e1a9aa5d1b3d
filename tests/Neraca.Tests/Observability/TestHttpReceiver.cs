using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Neraca.Tests.Observability;

/// <summary>A real HTTP endpoint on loopback standing in for the outside world (a chat webhook, an OTLP collector,
/// Sentry, a webhook subscriber): answers every request with one status and keeps what it received.</summary>
public sealed class TestHttpReceiver : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly Channel<ReceivedRequest> _received = Channel.CreateUnbounded<ReceivedRequest>();
    readonly List<ReceivedRequest> _all = [];

    TestHttpReceiver(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }
    public string Url => $"http://127.0.0.1:{Port}";

    public IReadOnlyList<ReceivedRequest> All
    {
        get { lock (_all) return [.. _all]; }
    }

    /// <param name="status">What every request is answered with (a failing webhook receiver answers 500).</param>
    public static async Task<TestHttpReceiver> StartAsync(int status = 200)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        TestHttpReceiver? receiver = null;
        app.Run(async context =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body, context.RequestAborted);
            var request = new ReceivedRequest(context.Request.Method, context.Request.Path.Value ?? "", context.Request.ContentType, body.ToArray());
            lock (receiver!._all) receiver._all.Add(request);
            await receiver._received.Writer.WriteAsync(request, context.RequestAborted);
            context.Response.StatusCode = status;
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        receiver = new TestHttpReceiver(app, new Uri(address).Port);
        return receiver;
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

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

public sealed record ReceivedRequest(string Method, string Path, string? ContentType, byte[] Body)
{
    public string Text => System.Text.Encoding.UTF8.GetString(Body);
}
