using System.Text;
using CsCheck;
using Neraca.Settlement.Counterparties;
using Neraca.Settlement.Matching;
using Neraca.Settlement.Statements;

namespace Neraca.Tests.Settlement;

/// <summary>The business calendar, the parsers and the matching rules, without a server.</summary>
public sealed class SettlementUnitTests
{
    static readonly BusinessCalendar Jakarta = new(SettlementWorld.Jakarta, 17 * 60, ["saturday", "sunday"]);

    [Fact]
    public void A_transfer_at_or_after_the_cut_off_belongs_to_the_next_open_business_date()
    {
        var friday = new DateOnly(2026, 11, 27);
        Assert.Equal(friday, Jakarta.DateOf(SettlementWorld.At(friday, 16, 59)));
        // After Friday's cut-off and over the weekend: Monday.
        Assert.Equal(friday.AddDays(3), Jakarta.DateOf(SettlementWorld.At(friday, 17, 0)));
        Assert.Equal(friday.AddDays(3), Jakarta.DateOf(SettlementWorld.At(friday.AddDays(1), 10)));
        Assert.Equal(friday.AddDays(3), Jakarta.DateOf(SettlementWorld.At(friday.AddDays(3), 9)));
        var (from, to) = Jakarta.Window(friday.AddDays(3));
        Assert.Equal((SettlementWorld.At(friday, 17), SettlementWorld.At(friday.AddDays(3), 17)), (from, to));
        Assert.False(Jakarta.IsOpen(friday.AddDays(1)));
        // 24:00 is the end of the calendar day.
        var midnight = new BusinessCalendar(SettlementWorld.Jakarta, 1440, []);
        Assert.Equal(friday, midnight.DateOf(SettlementWorld.At(friday, 23, 59)));
        Assert.Equal(friday.AddDays(1), midnight.DateOf(SettlementWorld.At(friday.AddDays(1), 0)));
    }

    [Fact]
    public void A_cut_off_in_a_zone_with_daylight_saving_is_a_real_instant()
    {
        var ny = new BusinessCalendar(TimeZoneInfo.FindSystemTimeZoneById("America/New_York"), 2 * 60 + 30, []);
        // 2026-03-08 02:30 does not exist in New York (clocks jump from 02:00 to 03:00): taken an hour later.
        Assert.Equal(new DateTimeOffset(2026, 3, 8, 7, 30, 0, TimeSpan.Zero), ny.CutoffOf(new DateOnly(2026, 3, 8)));
        Assert.Equal(new DateTimeOffset(2026, 3, 9, 6, 30, 0, TimeSpan.Zero), ny.CutoffOf(new DateOnly(2026, 3, 9)));
    }

    [Theory]
    [InlineData("00:00", null)]
    [InlineData("24:00", 1440)]
    [InlineData("17:30", 1050)]
    [InlineData("7:30", null)]
    [InlineData("12:60", null)]
    public void Cut_off_times_are_strict(string text, int? minutes) => Assert.Equal(minutes, Counterparty.ParseCutoff(text));

    [Theory]
    [InlineData("1500,00", 2, 150000L)]
    [InlineData("1500,5", 2, 150050L)]
    [InlineData("1500", 2, 150000L)]
    [InlineData("1500,", 2, 150000L)]
    [InlineData("15", 0, 15L)]
    [InlineData("1,234", 2, null)]
    [InlineData("1,2,3", 2, null)]
    [InlineData("-5", 2, null)]
    [InlineData("", 2, null)]
    [InlineData("99999999999999999999", 2, null)]
    public void Amounts_become_minor_units_without_floating_point(string text, int scale, long? expected) =>
        Assert.Equal(expected, Amounts.Parse(text, ',', scale));

    [Fact]
    public void Mt940_lines_read_entry_dates_reversals_and_funds_codes()
    {
        const string text = """
            :20:REF1
            :25:ACC
            :28C:1/1
            :60F:D261231IDR100,00
            :61:2612310101CR10,00NTRFABC//B1
            SUPPLEMENTARY
            :61:261231RD5,NMSCNONREF
            :86:MULTI
            LINE
            :61:261231RC1,5NCHGX
            :62F:D261231IDR86,50
            """;
        var parser = new Mt940Parser(new StringReader(text), 2);
        var lines = parser.ReadLines().ToList();
        Assert.Equal(3, lines.Count);
        Assert.Equal((new DateOnly(2026, 12, 31), new DateOnly(2027, 1, 1), 1000L, "ABC", "B1", "SUPPLEMENTARY"),
            (lines[0].ValueDate, lines[0].BookingDate!.Value, lines[0].Amount, lines[0].Reference, lines[0].BankReference, lines[0].Description));
        Assert.Equal((500L, (string?)null, "MULTI LINE"), (lines[1].Amount, lines[1].Reference, lines[1].Description));
        Assert.Equal(-150L, lines[2].Amount);
        Assert.Equal((-10_000L, -8_650L), (parser.Header.Opening!.Value, parser.Header.Closing!.Value));
        Assert.Equal(-10_000L + 1000 + 500 - 150, parser.Header.Closing);
    }

    [Theory]
    [InlineData(":20:A\n:25:B\n:61:261231C1,00NTRFX\n", 3)]
    [InlineData(":20:A\n:25:B\n:60F:C261231IDR1,00\n:61:261231X1,00NTRFX\n", 4)]
    [InlineData(":20:A\n:25:B\n:60F:C261231IDR1,00\n:61:261231C1,00NTRFTHISREFERENCEISTOOLONG\n", 4)]
    [InlineData(":20:A\n:25:B\n:60F:C261331IDR1,00\n", 3)]
    [InlineData(":20:A\n:20:B\n", 2)]
    [InlineData("garbage\n", 1)]
    public void Mt940_errors_name_the_line(string text, int line)
    {
        var e = Assert.Throws<StatementFormatException>(() => new Mt940Parser(new StringReader(text), 2).ReadLines().ToList());
        Assert.Equal(line, e.Line);
    }

    [Fact]
    public void Camt053_without_lines_is_read_from_its_balances()
    {
        var xml = Samples.Camt053(new DateOnly(2026, 11, 30));
        var start = xml.IndexOf("<Ntry>", StringComparison.Ordinal);
        var end = xml.LastIndexOf("</Ntry>", StringComparison.Ordinal) + "</Ntry>".Length;
        var parser = new Camt053Parser(new MemoryStream(Encoding.UTF8.GetBytes(xml[..start] + xml[end..])), 2, 1 << 20);
        Assert.Empty(parser.ReadLines());
        Assert.Equal((100_000_000L, 179_084_567L, "IDR"), (parser.Header.Opening!.Value, parser.Header.Closing!.Value, parser.Header.Currency));
    }

    [Fact]
    public void Csv_records_follow_rfc_4180()
    {
        var r = new CsvRecords(new StringReader("a;\"b;c\";\"d \"\"e\"\"\"\r\n\"multi\nline\";x;\n"), ';');
        Assert.True(r.Read());
        Assert.Equal(["a", "b;c", "d \"e\""], r.Record!);
        Assert.True(r.Read());
        Assert.Equal(["multi\nline", "x", ""], r.Record!);
        Assert.Equal(2, r.RawRow);
        Assert.False(r.Read());
        Assert.Throws<StatementFormatException>(() => new CsvRecords(new StringReader("\"open"), ';').Read());
        Assert.Throws<StatementFormatException>(() => new CsvRecords(new StringReader("ab\"c"), ';').Read());
    }

    static readonly MatchingRule[] Rules = [new("exact_reference", 0, 0), new("amount_date", 1, 0), new("many_to_one", 0, 0, 4)];

    [Fact]
    public void The_first_rule_wins_across_lines_and_a_transfer_is_never_used_twice()
    {
        var d = new DateOnly(2026, 11, 30);
        var candidates = new[]
        {
            new Candidate("t1", 100, d, ["t1", "REF-1"]),
            new Candidate("t2", 100, d, ["t2"]),
            new Candidate("b-1", 40, d, ["b-1", "BATCH-9-1"]),
            new Candidate("b-2", 60, d, ["b-2", "BATCH-9-2"]),
        };
        // Line 1 could take t1 by amount, but line 2 names t1: the exact pass runs first for every line.
        var lines = new[] { new BankLine(1, d, 100, null, null), new BankLine(2, d, 100, "REF-1", null), new BankLine(3, d, 100, "BATCH-9", null), new BankLine(4, d, 100, null, null) };
        var matches = Matcher.Match(lines, candidates, Rules).ToDictionary(m => m.LineNo);
        Assert.Equal(("exact_reference", "t1"), (matches[2].Rule, matches[2].TransferIds.Single()));
        Assert.Equal(("amount_date", "t2"), (matches[1].Rule, matches[1].TransferIds.Single()));
        Assert.Equal("many_to_one", matches[3].Rule);
        Assert.Equal(["b-1", "b-2"], matches[3].TransferIds);
        Assert.False(matches.ContainsKey(4));
    }

    [Fact]
    public void Matching_never_uses_a_transfer_twice_and_every_match_adds_up()
    {
        var d = new DateOnly(2026, 11, 30);
        var gen = Gen.Select(Gen.Int[1, 40], Gen.Long[-3, 3].Array[40], Gen.Int[0, 2].Array[40], Gen.Int[0, 3].Array[40], Gen.Long[0, 2]);
        gen.Sample((n, amounts, days, refs, tolerance) =>
        {
            var candidates = Enumerable.Range(0, n).Select(i => new Candidate($"t{i}", amounts[i] == 0 ? 7 : amounts[i] * 100, d.AddDays(days[i]),
                refs[i] == 0 ? [$"t{i}"] : [$"t{i}", $"R{refs[i]}-{i}"])).ToArray();
            var lines = Enumerable.Range(0, n).Select(i => new BankLine(i + 1, d.AddDays(days[(i * 7) % n]), candidates[(i * 3) % n].Amount + (i % 2),
                i % 3 == 0 ? $"R{refs[i]}" : i % 3 == 1 ? $"t{i}" : null, null)).ToArray();
            var byId = candidates.ToDictionary(c => c.Id);
            foreach (var c in candidates) c.Matched = false;
            var rules = Rules.Select(r => r with { Tolerance = tolerance }).ToArray();
            var matches = Matcher.Match(lines, candidates, rules);
            var used = matches.SelectMany(m => m.TransferIds).ToList();
            Assert.Equal(used.Count, used.Distinct().Count());
            Assert.Equal(matches.Count, matches.Select(m => m.LineNo).Distinct().Count());
            foreach (var m in matches)
            {
                var line = lines[m.LineNo - 1];
                var sum = m.TransferIds.Sum(t => byId[t].Amount);
                Assert.True(Math.Abs(sum - line.Amount) <= tolerance, $"line {m.LineNo} {line.Amount} vs {sum} by {m.Rule}");
                Assert.All(m.TransferIds, t => Assert.Equal(Math.Sign(line.Amount), Math.Sign(byId[t].Amount)));
            }
        }, iter: 300);
    }
}
