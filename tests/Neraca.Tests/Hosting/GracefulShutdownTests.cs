using System.Net;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;
using Neraca.Tests.Ledger;

namespace Neraca.Tests.Hosting;

[Collection(ServerProcesses.Name)]
public sealed class GracefulShutdownTests
{
    const int Clients = 24;

    [Fact]
    public async Task Sigterm_finishes_in_flight_transfers_then_exits_cleanly()
    {
        var database = await TestStores.NewDatabaseAsync(StoreKind.Sqlite);
        await using var server = await ServerProcess.StartAsync(["--database", database, "--bootstrap-api-key", NeracaServer.BootstrapKey]);
        using var http = server.CreateClient(NeracaServer.BootstrapKey);
        var l = new LedgerClient(http);
        await l.LedgerAsync();
        await l.AccountAsync("bank", normal: "debit");
        await l.AccountAsync("alice");

        // Clients send one transfer after another on kept-alive connections until the server stops answering. Each
        // request is marked when it starts and when it ends, so at the signal we know which ones were in flight.
        var requests = new List<Request>();
        var signalled = 0;
        var next = 0;
        var clients = Enumerable.Range(0, Clients).Select(async _ =>
        {
            while (true)
            {
                var r = new Request($"s{Interlocked.Increment(ref next)}", Volatile.Read(ref signalled) == 1);
                lock (requests) requests.Add(r);
                try { r.Status = (await l.TransferAsync(r.Id, "bank", "alice", 1)).Response.StatusCode; }
                catch (HttpRequestException) { r.Status = 0; } // refused after the listener closed: never acknowledged
                r.Finished = true;
                if (r.Status != HttpStatusCode.Created) return;
            }
        }).ToList();
        await Polling.Eventually(() => Volatile.Read(ref next) > 200, "the clients get going");

        List<Request> inFlight;
        lock (requests)
        {
            Volatile.Write(ref signalled, 1);
            inFlight = requests.Where(r => !r.Finished).ToList();
        }
        await server.TerminateAsync();
        await Task.WhenAll(clients);
        Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(30)));

        Assert.True(inFlight.Count > 0, "no request was in flight at SIGTERM: the test proved nothing");
        // Not dropped: every request the server had when the signal came was answered, and with success.
        Assert.All(inFlight, r => Assert.Equal(HttpStatusCode.Created, r.Status));
        Assert.DoesNotContain(requests, r => (int)r.Status >= 500);
        Assert.All(requests.Where(r => r.Status != HttpStatusCode.Created), r => Assert.True(r.StartedAfterSignal, $"{r.Id} failed with {r.Status}"));

        // Every acknowledged transfer is there after a restart, and nothing else.
        await using var again = await NeracaServer.StartAsync(database);
        var check = new LedgerClient(again.CreateClient(NeracaServer.BootstrapKey));
        Assert.Equal(requests.Count(r => r.Status == HttpStatusCode.Created), await check.PostedAsync("alice"));
    }

    sealed class Request(string id, bool startedAfterSignal)
    {
        public string Id { get; } = id;
        public bool StartedAfterSignal { get; } = startedAfterSignal;
        public volatile bool Finished;
        public HttpStatusCode Status { get; set; }
    }
}
