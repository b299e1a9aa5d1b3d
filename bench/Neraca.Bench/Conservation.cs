using Npgsql;

namespace Neraca.Bench;

/// <summary>Money in a side's ledgers as the balances and the journal each tell it.</summary>
public sealed record LedgerTotals(decimal BalanceDebits, decimal BalanceCredits, decimal JournalDebits, decimal JournalCredits, decimal TransferAmounts);

/// <summary>The conservation check after a run: debits = credits (balances and journal), balances = journal, and
/// the money moved = the money the clients saw acknowledged (at least that much when some answers were lost).</summary>
public sealed record ConservationCheck(bool Ok, string Detail, LedgerTotals Totals, decimal Acknowledged);

/// <summary>Reads the ledgers' totals with SQL on its own database (the two sides have different schemas).</summary>
public sealed class ConservationProbe(string connectionString, string sql, IReadOnlyDictionary<string, object> parameters)
{
    /// <summary>Neraca's schema: balances in <c>accounts</c>, journal in <c>transfers</c> and the <c>entries</c> view (migration 0104).</summary>
    public static ConservationProbe ForNeraca(string connectionString, string tenantId, string[] ledgerIds) => new(connectionString, """
        SELECT (SELECT coalesce(sum(debits_posted), 0) FROM accounts WHERE tenant_id = @tenant AND ledger_id = ANY(@ledgers)),
               (SELECT coalesce(sum(credits_posted), 0) FROM accounts WHERE tenant_id = @tenant AND ledger_id = ANY(@ledgers)),
               (SELECT coalesce(sum(amount), 0) FROM entries WHERE tenant_id = @tenant AND ledger_id = ANY(@ledgers) AND direction = 1),
               (SELECT coalesce(sum(amount), 0) FROM entries WHERE tenant_id = @tenant AND ledger_id = ANY(@ledgers) AND direction = 2),
               (SELECT coalesce(sum(amount), 0) FROM transfers WHERE tenant_id = @tenant AND ledger_id = ANY(@ledgers) AND NOT pending)
        """, new Dictionary<string, object> { ["tenant"] = tenantId, ["ledgers"] = ledgerIds });

    /// <summary>The naive baseline's schema (<see cref="Baseline.NaiveLedger"/>).</summary>
    public static ConservationProbe ForBaseline(string connectionString, string[] ledgerIds) => new(connectionString, """
        SELECT (SELECT coalesce(sum(debits_posted), 0) FROM accounts WHERE ledger_id = ANY(@ledgers)),
               (SELECT coalesce(sum(credits_posted), 0) FROM accounts WHERE ledger_id = ANY(@ledgers)),
               (SELECT coalesce(sum(amount), 0) FROM entries WHERE ledger_id = ANY(@ledgers) AND direction = 1),
               (SELECT coalesce(sum(amount), 0) FROM entries WHERE ledger_id = ANY(@ledgers) AND direction = 2),
               (SELECT coalesce(sum(amount), 0) FROM transfers WHERE ledger_id = ANY(@ledgers))
        """, new Dictionary<string, object> { ["ledgers"] = ledgerIds });

    public async Task<LedgerTotals> ReadAsync(CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 300 };
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return new LedgerTotals(reader.GetDecimal(0), reader.GetDecimal(1), reader.GetDecimal(2), reader.GetDecimal(3), reader.GetDecimal(4));
    }

    public async Task<ConservationCheck> CheckAsync(decimal acknowledged, bool someAnswersLost, CancellationToken ct)
    {
        var t = await ReadAsync(ct);
        var problems = new List<string>();
        if (t.BalanceDebits != t.BalanceCredits) problems.Add($"balances: debits {t.BalanceDebits} != credits {t.BalanceCredits}");
        if (t.JournalDebits != t.JournalCredits) problems.Add($"journal: debits {t.JournalDebits} != credits {t.JournalCredits}");
        if (t.BalanceDebits != t.JournalDebits) problems.Add($"balances {t.BalanceDebits} != journal {t.JournalDebits}");
        if (t.TransferAmounts != t.JournalDebits) problems.Add($"transfers {t.TransferAmounts} != entries {t.JournalDebits}");
        if (someAnswersLost ? t.BalanceDebits < acknowledged : t.BalanceDebits != acknowledged)
            problems.Add($"moved {t.BalanceDebits} but clients saw {acknowledged} acknowledged");
        return new ConservationCheck(problems.Count == 0, problems.Count == 0 ? $"debits = credits = {t.BalanceDebits}" : string.Join("; ", problems),
            t, acknowledged);
    }
}
