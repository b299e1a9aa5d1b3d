using System.Globalization;

namespace Neraca.Settlement.Counterparties;

/// <summary>A counterparty as the API accepts it (<c>POST /v1/settlement/counterparties</c>, <c>PUT .../{id}</c>).</summary>
public sealed record CounterpartyRequest(
    string? Id = null, string? Name = null, string? Type = null, string? SettlementAccount = null, string? CashAccount = null,
    string? SuspenseAccount = null, string? CutoffLocalTime = null, string? TimeZone = null, string[]? ClosedWeekdays = null,
    CsvMapping? CsvMapping = null, MatchingRule[]? MatchingRules = null);

public sealed record CounterpartyResponse(
    string Id, string Name, string Type, string SettlementAccount, string CashAccount, string? SuspenseAccount, string CutoffLocalTime,
    string TimeZone, string[] ClosedWeekdays, CsvMapping? CsvMapping, MatchingRule[] MatchingRules, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>How a counterparty's CSV statements are read. Columns are named by the header row (required). Amounts are
/// one signed <c>amount</c> column, or <c>debit</c> and <c>credit</c> columns; <c>balance</c> (the running balance after
/// each line) is required: it is what the file's integrity is checked against.</summary>
public sealed record CsvMapping(string? Delimiter = null, string? DateFormat = null, string? DecimalSeparator = null, string? Currency = null,
    CsvColumns? Columns = null);

public sealed record CsvColumns(string? ValueDate = null, string? BookingDate = null, string? Amount = null, string? Debit = null, string? Credit = null,
    string? Balance = null, string? Reference = null, string? BankReference = null, string? Description = null);

/// <summary>One matching rule: <c>exact_reference</c>, <c>amount_date</c> or <c>many_to_one</c>; rules run in order and
/// the first that matches a line wins.</summary>
/// <param name="Type">exact_reference, amount_date or many_to_one.</param>
/// <param name="WindowDays">Value dates may differ by this many days (amount_date; default 1).</param>
/// <param name="Tolerance">Amounts may differ by this many minor units (default 0).</param>
/// <param name="MinPrefixLength">many_to_one: the line's reference must be at least this long to group by (default 4).</param>
public sealed record MatchingRule(string? Type = null, int? WindowDays = null, long? Tolerance = null, int? MinPrefixLength = null)
{
    public const string ExactReference = "exact_reference";
    public const string AmountDate = "amount_date";
    public const string ManyToOne = "many_to_one";

    public static readonly MatchingRule[] Defaults =
    [
        new(ExactReference, 0, 0, null),
        new(AmountDate, 1, 0, null),
        new(ManyToOne, 0, 0, 4),
    ];
}

/// <summary>A stored counterparty.</summary>
internal sealed record Counterparty(
    string Id, string Name, string Type, string SettlementAccount, string CashAccount, string? SuspenseAccount, int CutoffMinutes,
    string TimeZone, string[] ClosedWeekdays, CsvMapping? CsvMapping, MatchingRule[]? MatchingRules, string? ClosedThrough,
    long CreatedAtUs, long UpdatedAtUs)
{
    public const int IdLengthMax = 40;
    public const int NameLengthMax = 200;
    public static readonly string[] Types = ["bank", "ewallet", "switch"];

    public MatchingRule[] Rules => MatchingRules ?? MatchingRule.Defaults;

    public BusinessCalendar Calendar => new(TimeZoneInfo.FindSystemTimeZoneById(TimeZone), CutoffMinutes, ClosedWeekdays);

    public static string FormatCutoff(int minutes) => string.Create(CultureInfo.InvariantCulture, $"{minutes / 60:00}:{minutes % 60:00}");

    /// <summary>"HH:mm" from 00:01 to 24:00 (24:00 = the end of the calendar day), as minutes after midnight.</summary>
    public static int? ParseCutoff(string? text)
    {
        if (text is not { Length: 5 } || text[2] != ':') return null;
        if (!int.TryParse(text.AsSpan(0, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var h)
            || !int.TryParse(text.AsSpan(3, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var m)) return null;
        var minutes = h * 60 + m;
        return m < 60 && minutes is >= 1 and <= 1440 ? minutes : null;
    }
}

/// <summary>The business calendar of a counterparty. Business date D is the period that ends at D's cut-off (local time in
/// the counterparty's zone) and starts at the cut-off of the open business date before it: a transfer effective at or
/// after the cut-off belongs to the next business date, and activity on a closed weekday rolls forward to the next open
/// date. Closed dates have no settlement.</summary>
internal sealed class BusinessCalendar(TimeZoneInfo zone, int cutoffMinutes, IReadOnlyCollection<string> closedWeekdays)
{
    readonly HashSet<DayOfWeek> _closed = closedWeekdays.Select(ParseWeekday).OfType<DayOfWeek>().ToHashSet();

    public TimeZoneInfo Zone => zone;

    public static DayOfWeek? ParseWeekday(string name) =>
        Enum.TryParse<DayOfWeek>(name, ignoreCase: true, out var d) && name.All(char.IsAsciiLetterLower) && Enum.IsDefined(d) ? d : null;

    public bool IsOpen(DateOnly date) => !_closed.Contains(date.DayOfWeek);

    /// <summary>The instant the business date's cut-off falls on. A local time skipped by a daylight-saving jump is
    /// taken one hour later; an ambiguous one as standard time.</summary>
    public DateTimeOffset CutoffOf(DateOnly date)
    {
        var local = date.ToDateTime(TimeOnly.MinValue, DateTimeKind.Unspecified).AddMinutes(cutoffMinutes);
        if (zone.IsInvalidTime(local)) local = local.AddHours(1);
        return new DateTimeOffset(TimeZoneInfo.ConvertTimeToUtc(local, zone), TimeSpan.Zero);
    }

    /// <summary>The business date a moment belongs to.</summary>
    public DateOnly DateOf(DateTimeOffset at)
    {
        var date = LocalDate(at);
        if (at >= CutoffOf(date)) date = date.AddDays(1);
        for (var i = 0; i < 7 && !IsOpen(date); i++) date = date.AddDays(1);
        return date;
    }

    /// <summary>The calendar date of a moment in the counterparty's zone (a bank's value date).</summary>
    public DateOnly LocalDate(DateTimeOffset at) => DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(at, zone).DateTime);

    /// <summary>The effective-time window [From, To) of an open business date.</summary>
    public (DateTimeOffset From, DateTimeOffset To) Window(DateOnly date)
    {
        var previous = date.AddDays(-1);
        for (var i = 0; i < 7 && !IsOpen(previous); i++) previous = previous.AddDays(-1);
        return (CutoffOf(previous), CutoffOf(date));
    }

    /// <summary>The window [From, To) of the calendar dates <paramref name="first"/>..<paramref name="last"/> (inclusive) in the zone.</summary>
    public (DateTimeOffset From, DateTimeOffset To) CalendarWindow(DateOnly first, DateOnly last) =>
        (LocalMidnight(first), LocalMidnight(last.AddDays(1)));

    DateTimeOffset LocalMidnight(DateOnly date)
    {
        var local = date.ToDateTime(TimeOnly.MinValue, DateTimeKind.Unspecified);
        if (zone.IsInvalidTime(local)) local = local.AddHours(1);
        return new DateTimeOffset(TimeZoneInfo.ConvertTimeToUtc(local, zone), TimeSpan.Zero);
    }
}

/// <summary>Dates on the wire: <c>yyyy-MM-dd</c>.</summary>
internal static class Dates
{
    public static string Format(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    public static DateOnly? Parse(string? text) =>
        DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d) ? d : null;
}
