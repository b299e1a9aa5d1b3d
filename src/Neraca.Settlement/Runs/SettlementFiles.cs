using System.Globalization;
using System.Text;

namespace Neraca.Settlement.Runs;

/// <summary>The settlement file of a run: CSV, or the fixed-width format documented in docs/settlement.md (records of
/// 170 ASCII characters, CRLF-terminated: one header, one detail per counterparty, one trailer).</summary>
internal static class SettlementFiles
{
    public const int RecordLength = 170;

    public static string Csv(RunResponse run)
    {
        var sb = new StringBuilder("run_id,business_date,counterparty,settlement_account,cash_account,credits,debits,count,net,direction,amount,transfer_id,status\r\n");
        foreach (var i in run.Items)
            sb.Append(CultureInfo.InvariantCulture, $"{run.Id},{run.BusinessDate},{i.Counterparty},{i.SettlementAccount},{i.CashAccount},{i.Credits},{i.Debits},{i.Count},{i.Net},{Direction(i.Net)},{Math.Abs(i.Net)},{i.TransferId},{run.Status}\r\n");
        return sb.ToString();
    }

    public static string Fixed(RunResponse run)
    {
        var sb = new StringBuilder();
        Record(sb, "H" + Left(run.Id, 32) + run.BusinessDate.Replace("-", "", StringComparison.Ordinal) + run.CreatedAt.UtcDateTime.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture)
            + Left(run.Status, 8));
        long paid = 0, received = 0;
        foreach (var i in run.Items)
        {
            if (i.Net > 0) paid = checked(paid + i.Net); else received = checked(received - i.Net);
            Record(sb, "D" + Left(i.Counterparty, 40) + Direction(i.Net) + Number(Math.Abs(i.Net), 18) + Number(i.Credits, 18) + Number(i.Debits, 18)
                + Number(i.Count, 10) + Left(i.TransferId ?? "", 64));
        }
        Record(sb, "T" + Number(run.Items.Count, 10) + Number(paid, 18) + Number(received, 18));
        return sb.ToString();
    }

    /// <summary>P: we pay the counterparty (the settlement account gained), R: we receive, N: nothing moves.</summary>
    static string Direction(long net) => net > 0 ? "P" : net < 0 ? "R" : "N";

    static void Record(StringBuilder sb, string record)
    {
        if (record.Length > RecordLength) throw new InvalidOperationException("fixed-width record too long");
        sb.Append(record.PadRight(RecordLength)).Append("\r\n");
    }

    static string Left(string value, int width) => value.Length > width ? value[..width] : value.PadRight(width);

    static string Number(long value, int width) => value.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0');
}
