using System.Text.Json;

namespace Neraca.Bench;

/// <summary>The requests the scenarios send, against one side (Neraca or the baseline) and its accounts.</summary>
public sealed class Workload(LedgerClient client, string[] accounts, string hotAccount)
{
    const int AmountMax = 1000;

    public LedgerClient Client => client;

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

    /// <summary>A read of a random account's balance, or (one time in <paramref name="writeEvery"/>) a uniform transfer.</summary>
    public Operation ReadMostly(string runTag, int writeEvery) => (c, ct) =>
        c.Random.Next(writeEvery) == 0
            ? SendTransferAsync(c, runTag, credit: null, ct)
            : client.GetAccountAsync(accounts[c.Random.Next(accounts.Length)], ct);

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
