using System.Text.Json;

namespace Neraca.Bench;

/// <summary>The requests the scenarios send, against one side (Neraca or the baseline) and its accounts.</summary>
public sealed class Workload(LedgerClient client, string[] accounts, string hotAccount)
{
    const int AmountMax = 1000;

    public LedgerClient Client => client;

    public string HotAccount => hotAccount;

    /// <summary>One transfer between two distinct random accounts.</summary>
    public Operation Uniform(string runTag) => (c, ct) => SendTransferAsync(c, runTag, credit: null, ct);

    /// <summary>One transfer from a random account to the hot account.</summary>
    public Operation Hot(string runTag) => (c, ct) => SendTransferAsync(c, runTag, credit: hotAccount, ct);

    /// <summary>One batch of <paramref name="size"/> uniform transfers.</summary>
    public Operation Batch(string runTag, int size) => (c, ct) =>
    {
        if (c.Amounts.Length < size) c.Amounts = new long[size];
        c.Buffer.Clear();
        LedgerClient.WriteBatch(c.Buffer, size, (w, i) =>
        {
            var (debit, credit) = Pair(c.Random);
            var amount = c.Random.NextInt64(1, AmountMax + 1);
            c.Amounts[i] = amount;
            LedgerClient.WriteTransfer(w, c.NextId(runTag), debit, credit, amount);
        });
        return client.BatchAsync(c.Buffer.WrittenMemory, c.Amounts, size, ct);
    };

    /// <summary>Sends one transfer into every account (a ring, then into the hot account) in batches of 1,000, 4 at a
    /// time: the server's caches and PostgreSQL's buffers hold every account before anything is measured.</summary>
    public async Task<OpResult> PrimeAsync(string runTag, CancellationToken ct)
    {
        const int chunk = 1000;
        var total = new OpResult(0, 0, 0, 0, null, false);
        var gate = new object();
        var starts = Enumerable.Range(0, (accounts.Length + chunk) / chunk).Select(k => k * chunk).ToArray();
        await Parallel.ForEachAsync(starts, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = ct }, async (start, token) =>
        {
            var count = Math.Min(chunk, accounts.Length + 1 - start);
            var amounts = new long[count];
            var buffer = new System.Buffers.ArrayBufferWriter<byte>(count * 100);
            LedgerClient.WriteBatch(buffer, count, (w, i) =>
            {
                var k = start + i;
                var debit = k < accounts.Length ? accounts[k] : accounts[0];
                var credit = k < accounts.Length ? accounts[(k + 1) % accounts.Length] : hotAccount;
                amounts[i] = 1;
                LedgerClient.WriteTransfer(w, $"{runTag}{k}", debit, credit, 1);
            });
            var r = await client.BatchAsync(buffer.WrittenMemory, amounts, count, token);
            lock (gate)
                total = new OpResult(total.Transfers + r.Transfers, 0, total.Failed + r.Failed, total.AckedAmount + r.AckedAmount,
                    total.Error ?? r.Error, total.Uncertain || r.Uncertain);
        });
        return total;
    }

    /// <summary>A read of a random account's balance, or (one time in <paramref name="writeEvery"/>) a uniform transfer.</summary>
    public Operation ReadMostly(string runTag, int writeEvery) => (c, ct) =>
        c.Random.Next(writeEvery) == 0 ? SendTransferAsync(c, runTag, credit: null, ct) : ReadAccountAsync(c, ct);

    /// <summary>A read of a random account's balance.</summary>
    public Operation Read() => ReadAccountAsync;

    Task<OpResult> ReadAccountAsync(Client c, CancellationToken ct) => client.GetAccountAsync(accounts[c.Random.Next(accounts.Length)], ct);

    Task<OpResult> SendTransferAsync(Client c, string runTag, string? credit, CancellationToken ct)
    {
        string debit;
        if (credit is null) (debit, credit) = Pair(c.Random);
        else debit = accounts[c.Random.Next(accounts.Length)];
        var amount = c.Random.NextInt64(1, AmountMax + 1);
        c.Buffer.Clear();
        using (var w = new Utf8JsonWriter(c.Buffer)) LedgerClient.WriteTransfer(w, c.NextId(runTag), debit, credit, amount);
        return client.TransferAsync(c.Buffer.WrittenMemory, amount, ct);
    }

    (string Debit, string Credit) Pair(Random random)
    {
        var d = random.Next(accounts.Length);
        var k = random.Next(accounts.Length - 1);
        if (k >= d) k++;
        return (accounts[d], accounts[k]);
    }
}
