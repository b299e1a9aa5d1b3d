using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Faults;

/// <summary>A TCP proxy between the application and its database (in front of PgBouncer) that misbehaves on demand:
/// added latency on every chunk each way, connections reset at random, or a partition (every open connection cut,
/// new ones accepted and then left without an answer, as a dropped route looks from the client).</summary>
public sealed class FaultProxy : IAsyncDisposable
{
    readonly TcpListener _listener;
    readonly int _target;
    readonly CancellationTokenSource _stop = new();
    readonly ConcurrentDictionary<Connection, byte> _open = new();
    readonly Task _accepting;

    sealed record Connection(TcpClient Client, TcpClient Server);

    FaultProxy(int port, int target)
    {
        _target = target;
        Port = port;
        _listener = new TcpListener(IPAddress.Loopback, port);
        _listener.Start(512);
        _accepting = AcceptAsync();
    }

    public int Port { get; }

    /// <summary>Delay added to every chunk forwarded, each way.</summary>
    public TimeSpan Latency { get; set; }

    /// <summary>The chance that a chunk kills its connection (a reset in the middle of a query or a commit).</summary>
    public double DropShare { get; set; }

    public bool Partitioned { get; private set; }

    public static FaultProxy Start(int target) => new(ProcessRunner.FreePort(), target);

    public void Heal()
    {
        Latency = TimeSpan.Zero;
        DropShare = 0;
        Partitioned = false;
    }

    public void Partition()
    {
        Partitioned = true;
        foreach (var c in _open.Keys) Close(c);
    }

    async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            _ = HandleAsync(client);
        }
    }

    async Task HandleAsync(TcpClient client)
    {
        if (Partitioned)
        {
            // Nothing comes back until the partition heals; the client's own timeouts decide.
            while (Partitioned && !_stop.IsCancellationRequested) await Task.Delay(100);
            client.Dispose();
            return;
        }
        // No Nagle: the database protocol is many small messages, each waited for.
        client.NoDelay = true;
        var server = new TcpClient { NoDelay = true };
        try
        {
            await server.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            client.Dispose();
            server.Dispose();
            return;
        }
        var connection = new Connection(client, server);
        _open[connection] = 0;
        await Task.WhenAny(PumpAsync(connection, client, server), PumpAsync(connection, server, client));
        Close(connection);
    }

    async Task PumpAsync(Connection connection, TcpClient from, TcpClient to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            var input = from.GetStream();
            var output = to.GetStream();
            while (true)
            {
                var n = await input.ReadAsync(buffer, _stop.Token);
                if (n == 0) return;
                if (Latency > TimeSpan.Zero) await Task.Delay(Latency, _stop.Token);
                if (Partitioned || (DropShare > 0 && Random.Shared.NextDouble() < DropShare)) return;
                await output.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    void Close(Connection c)
    {
        if (!_open.TryRemove(c, out _)) return;
        // Linger 0: a reset, not a polite close, as a dropped route or a killed peer looks.
        foreach (var side in new[] { c.Client, c.Server })
        {
            try { side.Client.LingerState = new LingerOption(true, 0); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            side.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        foreach (var c in _open.Keys) Close(c);
        await _accepting;
        _stop.Dispose();
    }
}
