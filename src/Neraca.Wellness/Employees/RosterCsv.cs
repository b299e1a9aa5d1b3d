using System.Globalization;
using CsvHelper;
using Neraca.Storage;
using Neraca.Wellness.Cycles;
using Neraca.Wellness.Employers;

namespace Neraca.Wellness.Employees;

/// <summary>One data row of a roster file: its line number in the file (header = line 1) and either the parsed
/// fields or the reason it is rejected.</summary>
public sealed record RosterRow(int Line, string? EmployeeId, EmployeeFields? Fields, string? Rejection);

/// <summary>The result of reading a roster file: its rows, or why the file as a whole is unusable (nothing is applied).</summary>
public sealed record RosterFile(IReadOnlyList<RosterRow> Rows, IReadOnlyList<string> IgnoredColumns, string? Problem);

/// <summary>Reads <c>employee_id,name,email,phone,pay_type,pay_rate,start_date,bank_code,bank_account</c> (CsvHelper).
/// A file that is not CSV or lacks a required column is refused as a whole; a bad row is rejected alone with its line
/// number and reason.</summary>
public static class RosterCsv
{
    public static readonly string[] Columns = ["employee_id", "name", "email", "phone", "pay_type", "pay_rate", "start_date", "bank_code", "bank_account"];
    public const int EmployeeIdLengthMax = 64;
    public const long PayRateMax = 10_000_000_000_000;

    /// <summary>Strict RFC 4180 reading: a comma separator, quoted fields may hold line breaks, malformed quoting
    /// makes the whole file unreadable (a bad quote would otherwise shift every later field).</summary>
    internal static readonly CsvReaderOptions Options = new()
    {
        Separator = ',',
        HasHeader = true,
        TrimWhitespace = true,
        SkipEmptyLines = true,
        TrackLineNumbers = true,
        IncludeValuesInExceptions = false,
        MalformedData = CsvMalformedDataHandling.Throw,
        FieldCountMismatch = CsvFieldCountHandling.Allow,
    };

    public static RosterFile Parse(string text, int rowsMax)
    {
        var rows = new List<RosterRow>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        try
        {
            using var csv = CsvReader.FromText(text, Options);
            var header = csv.Headers;
            if (header is not { Count: > 0 } || header.All(string.IsNullOrWhiteSpace))
                return new RosterFile([], [], "The file is empty: a header line naming the columns is required.");
            var names = header.Select(h => h.Trim().ToLowerInvariant()).ToArray();
            var missing = Columns.Where(c => !names.Contains(c)).ToArray();
            if (missing.Length > 0) return new RosterFile([], [], $"Required column(s) missing from the header: {string.Join(", ", missing)}.");
            var duplicated = names.GroupBy(n => n).Where(g => g.Count() > 1).Select(g => g.Key).ToArray();
            if (duplicated.Length > 0) return new RosterFile([], [], $"Column(s) named twice in the header: {string.Join(", ", duplicated)}.");
            var index = Columns.ToDictionary(c => c, c => Array.IndexOf(names, c));
            var ignored = names.Where(n => !Columns.Contains(n)).ToArray();
            while (csv.Read())
            {
                if (rows.Count >= rowsMax) return new RosterFile([], [], $"The file has more than {rowsMax} rows; split it.");
                // The file's line where the record starts; the header is line 1.
                var line = checked((int)csv.LineNumber);
                var count = csv.FieldCount;
                if (count != names.Length)
                {
                    rows.Add(new RosterRow(line, count > index["employee_id"] ? csv.GetString(index["employee_id"]) : null, null,
                        $"Expected {names.Length} fields, found {count}."));
                    continue;
                }
                var reader = csv;
                string Field(string c) => reader.GetString(index[c]) ?? "";
                var row = Validate(line, Field);
                if (row.Fields is not null && row.EmployeeId is { } id)
                {
                    if (seen.TryGetValue(id, out var first))
                        row = row with { Fields = null, Rejection = $"employee_id '{id}' appears again (first on line {first})." };
                    else seen[id] = line;
                }
                rows.Add(row);
            }
            return new RosterFile(rows, ignored, null);
        }
        catch (CsvFormatException e)
        {
            return new RosterFile([], [], $"Not a readable CSV file (line {e.LineNumber}): {e.Message}");
        }
    }

    static RosterRow Validate(int line, Func<string, string> field)
    {
        var problems = new List<string>();
        var employeeId = field("employee_id");
        if (!Ids.IsValid(employeeId) || employeeId.Length > EmployeeIdLengthMax)
            problems.Add($"employee_id: 1-{EmployeeIdLengthMax} characters of A-Z a-z 0-9 . _ : -");
        var name = field("name");
        if (name.Length is 0 or > EmployersApi.NameLengthMax) problems.Add("name: required, 1-200 characters");
        var email = field("email");
        if (email.Length > 0 && (email.Length > 254 || email.IndexOf('@', StringComparison.Ordinal) is < 1 || email.EndsWith('@'))) problems.Add("email: not an address");
        var phone = field("phone");
        if (phone.Length > 0 && !IsPhone(phone)) problems.Add("phone: 6-20 digits, optionally starting with +");
        var payType = field("pay_type").ToLowerInvariant();
        if (!PayTypes.IsValid(payType)) problems.Add("pay_type: monthly, daily or hourly");
        if (!long.TryParse(field("pay_rate"), NumberStyles.None, CultureInfo.InvariantCulture, out var rate) || rate < 1 || rate > PayRateMax)
            problems.Add("pay_rate: a whole number of minor units (IDR has 2: Rp 5.000.000 is 500000000), 1 or more");
        if (!Dates.TryParse(field("start_date"), out var start)) problems.Add("start_date: a date YYYY-MM-DD");
        var bankCode = field("bank_code").ToUpperInvariant();
        if (bankCode.Length is < 2 or > 20 || bankCode.Any(c => !(char.IsAsciiLetterOrDigit(c) || c == '_'))) problems.Add("bank_code: 2-20 letters or digits (BCA, BNI, BRI, MANDIRI, ...)");
        var account = field("bank_account").Replace(" ", "", StringComparison.Ordinal).Replace("-", "", StringComparison.Ordinal);
        if (account.Length is < 5 or > 34 || account.Any(c => !char.IsAsciiDigit(c))) problems.Add("bank_account: 5-34 digits");
        if (problems.Count > 0) return new RosterRow(line, employeeId.Length > 0 ? employeeId : null, null, string.Join("; ", problems) + ".");
        return new RosterRow(line, employeeId, new EmployeeFields(name, email.Length > 0 ? email : null, phone.Length > 0 ? phone : null, payType, rate,
            start, bankCode, account), null);
    }

    static bool IsPhone(string s)
    {
        var digits = s.StartsWith('+') ? s[1..] : s;
        return digits.Length is >= 6 and <= 20 && digits.All(char.IsAsciiDigit);
    }
}
