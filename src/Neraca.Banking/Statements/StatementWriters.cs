using System.Globalization;
using System.Text;
using System.Xml;
using CsvHelper;
using PdfSharp.Drawing;
using PdfSharp.Fonts;
using PdfSharp.Pdf;

namespace Neraca.Banking.Statements;

/// <summary>One booked entry of a statement, with dates in the tenant's time zone.</summary>
public sealed record StatementLine(DateTimeOffset BookedAt, DateOnly ValueDate, string TransferId, bool Credit, long Amount, long BalanceAfter,
    string? Reference, string? Description, string? Counterparty, string? Kind);

/// <summary>What every format shows about the statement as a whole.</summary>
public sealed record StatementHeader(string Id, string AccountId, string Currency, int Scale, DateOnly From, DateOnly To, DateTimeOffset IssuedAt,
    DateTimeOffset PeriodStart, DateTimeOffset PeriodEnd, long Opening, long Closing, long Credits, long Debits, long CreditCount, long DebitCount,
    string? HolderName);

/// <summary>Amounts as decimal text from minor units without floating point: <c>123450</c> at scale 2 → <c>1234.50</c>.</summary>
public static class Money
{
    public static string Format(long minor, int scale)
    {
        if (scale == 0) return minor.ToString(CultureInfo.InvariantCulture);
        var negative = minor < 0;
        var digits = (negative ? -(decimal)minor : minor).ToString(CultureInfo.InvariantCulture).PadLeft(scale + 1, '0');
        return (negative ? "-" : "") + digits[..^scale] + "." + digits[^scale..];
    }
}

/// <summary>CSV (RFC 4180: CRLF, quoted when needed; UTF-8): one row per entry, streamed as entries arrive.</summary>
public sealed class CsvStatementWriter : IDisposable
{
    public static readonly string[] Header = ["booking_date", "value_date", "transfer_id", "direction", "amount", "balance_after", "reference", "description", "counterparty"];

    readonly CsvWriter _csv;
    readonly int _scale;

    public CsvStatementWriter(Stream output, int scale)
    {
        _scale = scale;
        _csv = CsvWriter.Create(output, CsvWriterOptions.Default, leaveOpen: true);
        _csv.WriteRecord(Header);
    }

    public void Write(StatementLine l)
    {
        _csv.WriteField(l.BookedAt.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffffzzz", CultureInfo.InvariantCulture));
        _csv.WriteField(l.ValueDate.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        _csv.WriteField(l.TransferId);
        _csv.WriteField(l.Credit ? "credit" : "debit");
        _csv.WriteField(Money.Format(l.Amount, _scale));
        _csv.WriteField(Money.Format(l.BalanceAfter, _scale));
        _csv.WriteField(l.Reference ?? "");
        _csv.WriteField(l.Description ?? "");
        _csv.WriteField(l.Counterparty ?? "");
        _csv.EndRecord();
    }

    public void Dispose()
    {
        _csv.Flush();
        _csv.Dispose();
    }
}

/// <summary>ISO 20022 <c>camt.053.001.08</c> (bank-to-customer statement): opening and closing booked balances, the
/// transaction summary, then one <c>Ntry</c> per entry with booking and value dates and references, streamed.</summary>
public sealed class CamtStatementWriter : IDisposable
{
    const string Ns = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08";
    readonly XmlWriter _xml;
    readonly StatementHeader _h;

    public CamtStatementWriter(Stream output, StatementHeader h)
    {
        _h = h;
        _xml = XmlWriter.Create(output, new XmlWriterSettings { Encoding = new UTF8Encoding(false), Indent = true, CloseOutput = false, Async = false });
        _xml.WriteStartDocument();
        _xml.WriteStartElement("Document", Ns);
        _xml.WriteStartElement("BkToCstmrStmt");
        _xml.WriteStartElement("GrpHdr");
        _xml.WriteElementString("MsgId", h.Id);
        _xml.WriteElementString("CreDtTm", Timestamp(h.IssuedAt));
        _xml.WriteEndElement();
        _xml.WriteStartElement("Stmt");
        _xml.WriteElementString("Id", h.Id);
        _xml.WriteElementString("CreDtTm", Timestamp(h.IssuedAt));
        _xml.WriteStartElement("FrToDt");
        _xml.WriteElementString("FrDtTm", Timestamp(h.PeriodStart));
        _xml.WriteElementString("ToDtTm", Timestamp(h.PeriodEnd));
        _xml.WriteEndElement();
        _xml.WriteStartElement("Acct");
        _xml.WriteStartElement("Id");
        _xml.WriteStartElement("Othr");
        _xml.WriteElementString("Id", h.AccountId);
        _xml.WriteEndElement();
        _xml.WriteEndElement();
        _xml.WriteElementString("Ccy", h.Currency);
        _xml.WriteEndElement();
        Balance("OPBD", h.Opening, h.From);
        Balance("CLBD", h.Closing, h.To);
        _xml.WriteStartElement("TxsSummry");
        _xml.WriteStartElement("TtlNtries");
        _xml.WriteElementString("NbOfNtries", (h.CreditCount + h.DebitCount).ToString(CultureInfo.InvariantCulture));
        _xml.WriteElementString("Sum", Amount(checked(h.Credits + h.Debits)));
        _xml.WriteStartElement("TtlNetNtry");
        var net = checked(h.Credits - h.Debits);
        _xml.WriteElementString("Amt", Amount(Math.Abs(net)));
        _xml.WriteElementString("CdtDbtInd", net >= 0 ? "CRDT" : "DBIT");
        _xml.WriteEndElement();
        _xml.WriteEndElement();
        Totals("TtlCdtNtries", h.CreditCount, h.Credits);
        Totals("TtlDbtNtries", h.DebitCount, h.Debits);
        _xml.WriteEndElement();
    }

    void Balance(string code, long amount, DateOnly date)
    {
        _xml.WriteStartElement("Bal");
        _xml.WriteStartElement("Tp");
        _xml.WriteStartElement("CdOrPrtry");
        _xml.WriteElementString("Cd", code);
        _xml.WriteEndElement();
        _xml.WriteEndElement();
        AmountElement(Math.Abs(amount));
        _xml.WriteElementString("CdtDbtInd", amount >= 0 ? "CRDT" : "DBIT");
        _xml.WriteStartElement("Dt");
        _xml.WriteElementString("Dt", date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        _xml.WriteEndElement();
        _xml.WriteEndElement();
    }

    void Totals(string element, long count, long sum)
    {
        _xml.WriteStartElement(element);
        _xml.WriteElementString("NbOfNtries", count.ToString(CultureInfo.InvariantCulture));
        _xml.WriteElementString("Sum", Amount(sum));
        _xml.WriteEndElement();
    }

    void AmountElement(long amount)
    {
        _xml.WriteStartElement("Amt");
        _xml.WriteAttributeString("Ccy", _h.Currency);
        _xml.WriteString(Amount(amount));
        _xml.WriteEndElement();
    }

    string Amount(long minor) => Money.Format(minor, _h.Scale);

    static string Timestamp(DateTimeOffset t) => t.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffffzzz", CultureInfo.InvariantCulture);

    public void Write(StatementLine l)
    {
        _xml.WriteStartElement("Ntry");
        _xml.WriteElementString("NtryRef", l.TransferId);
        AmountElement(l.Amount);
        _xml.WriteElementString("CdtDbtInd", l.Credit ? "CRDT" : "DBIT");
        _xml.WriteStartElement("Sts");
        _xml.WriteElementString("Cd", "BOOK");
        _xml.WriteEndElement();
        _xml.WriteStartElement("BookgDt");
        _xml.WriteElementString("DtTm", Timestamp(l.BookedAt));
        _xml.WriteEndElement();
        _xml.WriteStartElement("ValDt");
        _xml.WriteElementString("Dt", l.ValueDate.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        _xml.WriteEndElement();
        _xml.WriteStartElement("BkTxCd");
        _xml.WriteStartElement("Prtry");
        _xml.WriteElementString("Cd", l.Kind ?? "transfer");
        _xml.WriteElementString("Issr", "Neraca");
        _xml.WriteEndElement();
        _xml.WriteEndElement();
        _xml.WriteStartElement("NtryDtls");
        _xml.WriteStartElement("TxDtls");
        _xml.WriteStartElement("Refs");
        _xml.WriteElementString("AcctSvcrRef", l.TransferId);
        _xml.WriteElementString("EndToEndId", string.IsNullOrEmpty(l.Reference) ? "NOTPROVIDED" : l.Reference);
        _xml.WriteEndElement();
        if (!string.IsNullOrEmpty(l.Description))
        {
            _xml.WriteStartElement("RmtInf");
            _xml.WriteElementString("Ustrd", l.Description);
            _xml.WriteEndElement();
        }
        _xml.WriteEndElement();
        _xml.WriteEndElement();
        _xml.WriteEndElement();
    }

    public void Dispose()
    {
        _xml.WriteEndElement(); // Stmt
        _xml.WriteEndElement(); // BkToCstmrStmt
        _xml.WriteEndElement(); // Document
        _xml.WriteEndDocument();
        _xml.Flush();
        _xml.Dispose();
    }
}

/// <summary>DejaVu Sans from the assembly (a fresh machine may have no fonts at all); licence in Statements/Fonts.</summary>
sealed class EmbeddedFontResolver : IFontResolver
{
    public const string Family = "DejaVu Sans";

    public FontResolverInfo? ResolveTypeface(string familyName, bool bold, bool italic) => new(bold ? "DejaVuSans-Bold" : "DejaVuSans");

    public byte[]? GetFont(string faceName)
    {
        using var stream = typeof(EmbeddedFontResolver).Assembly.GetManifestResourceStream($"Neraca.Banking.Fonts.{faceName}.ttf")
            ?? throw new InvalidOperationException($"Font {faceName} is not embedded.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    static readonly Lock Gate = new();

    /// <summary>PDFsharp has one process-wide resolver, settable once before the first font is used.</summary>
    public static void Install()
    {
        lock (Gate)
            GlobalFontSettings.FontResolver ??= new EmbeddedFontResolver();
    }
}

/// <summary>The PDF a person reads: header, summary, then a table of entries (date, description, reference, debit,
/// credit, balance). Deterministic: fixed creation date and document ids derived from the statement, so the same
/// statement renders to the same bytes. PDFsharp keeps the whole document in memory until it saves it (docs/banking.md).</summary>
public sealed class PdfStatementWriter : IDisposable
{
    const double Margin = 40, RowHeight = 13;
    readonly PdfDocument _document = new();
    readonly StatementHeader _h;
    readonly Stream _output;
    readonly XFont _font, _bold, _small;
    XGraphics? _page;
    double _y;
    int _pages;

    public PdfStatementWriter(Stream output, StatementHeader h)
    {
        EmbeddedFontResolver.Install();
        _output = output;
        _h = h;
        _font = new XFont(EmbeddedFontResolver.Family, 8);
        _bold = new XFont(EmbeddedFontResolver.Family, 8, XFontStyleEx.Bold);
        _small = new XFont(EmbeddedFontResolver.Family, 7);
        _document.Info.Title = $"Statement {h.Id}";
        _document.Info.Author = "Neraca";
        _document.Info.Subject = $"Account {h.AccountId} {h.From:yyyy-MM-dd} to {h.To:yyyy-MM-dd}";
        _document.Info.CreationDate = h.IssuedAt.UtcDateTime;
        _document.Info.ModificationDate = h.IssuedAt.UtcDateTime;
        var id = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(h.Id)))[..32];
        _document.Internals.FirstDocumentID = id;
        _document.Internals.SecondDocumentID = id;
        NewPage();
        Text($"Account statement {h.Id}", _bold, Margin, 12);
        Text($"Account: {h.AccountId}   Currency: {h.Currency}   Holder: {h.HolderName ?? "-"}", _font, Margin, 0);
        Text($"Period: {h.From:yyyy-MM-dd} to {h.To:yyyy-MM-dd}   Issued: {h.IssuedAt:yyyy-MM-dd HH:mm:ss zzz}", _font, Margin, 0);
        Text($"Opening balance: {Money.Format(h.Opening, h.Scale)}   Credits: {Money.Format(h.Credits, h.Scale)} ({h.CreditCount})   " +
             $"Debits: {Money.Format(h.Debits, h.Scale)} ({h.DebitCount})   Closing balance: {Money.Format(h.Closing, h.Scale)}", _font, Margin, 8);
        TableHeader();
    }

    void NewPage()
    {
        _page?.Dispose();
        var page = _document.AddPage();
        page.Size = PdfSharp.PageSize.A4;
        _page = XGraphics.FromPdfPage(page);
        _pages++;
        _y = Margin;
        _page.DrawString($"{_h.Id} page {_pages}", _small, XBrushes.Gray, new XPoint(Margin, page.Height.Point - 20));
    }

    void Text(string text, XFont font, double x, double after)
    {
        _page!.DrawString(text, font, XBrushes.Black, new XPoint(x, _y));
        _y += RowHeight + after;
    }

    static readonly double[] Columns = [Margin, 150, 330, 420, 470, 520];

    void TableHeader()
    {
        string[] titles = ["Booked", "Description", "Reference", "Debit", "Credit", "Balance"];
        for (var i = 0; i < titles.Length; i++) _page!.DrawString(titles[i], _bold, XBrushes.Black, new XPoint(Columns[i], _y));
        _y += RowHeight;
    }

    public void Write(StatementLine l)
    {
        if (_y > _document.Pages[^1].Height.Point - Margin - 20)
        {
            NewPage();
            TableHeader();
        }
        string[] cells =
        [
            l.BookedAt.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture), Clip(l.Description ?? l.TransferId, 40), Clip(l.Reference ?? "", 20),
            l.Credit ? "" : Money.Format(l.Amount, _h.Scale), l.Credit ? Money.Format(l.Amount, _h.Scale) : "", Money.Format(l.BalanceAfter, _h.Scale),
        ];
        for (var i = 0; i < cells.Length; i++)
            if (cells[i].Length > 0) _page!.DrawString(cells[i], _font, XBrushes.Black, new XPoint(Columns[i], _y));
        _y += RowHeight;
    }

    static string Clip(string s, int max) => s.Length <= max ? s : s[..(max - 1)] + "…";

    public void Dispose()
    {
        _page?.Dispose();
        _document.Save(_output, closeStream: false);
        _document.Dispose();
    }
}
