using System.Globalization;
using System.Xml;
using System.Xml.Linq;

namespace Neraca.Settlement.Statements;

/// <summary>ISO 20022 camt.053 (bank-to-customer statement), versions <c>camt.053.001.02</c> to <c>.13</c>, one
/// <c>Stmt</c> per file, read with a forward-only <see cref="XmlReader"/>: only one <c>Ntry</c> at a time is held as a
/// tree. DTDs are refused (no entity expansion, no external resolution). Balances: <c>OPBD</c> or <c>PRCD</c> opens,
/// <c>CLBD</c> closes. An entry's sign is its <c>CdtDbtInd</c> (a reversal, <c>RvslInd</c> true, is booked in the direction
/// it moves money); its reference is the first <c>EndToEndId</c> (not <c>NOTPROVIDED</c>), else <c>InstrId</c>.</summary>
internal sealed class Camt053Parser(Stream stream, int scale, long charactersMax) : StatementParser
{
    public const string NamespacePrefix = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.";

    public override string Format => "camt053";

    string _ns = "";

    public override IEnumerable<ParsedLine> ReadLines()
    {
        var settings = new XmlReaderSettings
        {
            DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, IgnoreComments = true, IgnoreWhitespace = true,
            IgnoreProcessingInstructions = true, MaxCharactersInDocument = charactersMax, CloseInput = false,
        };
        using var reader = XmlReader.Create(stream, settings);
        var info = (IXmlLineInfo)reader;
        var statements = 0;
        var openingSeen = false;
        var closingSeen = false;
        while (true)
        {
            bool more;
            try { more = reader.Read(); }
            catch (XmlException e) { throw new StatementFormatException("Not well-formed XML: " + e.Message, e.LineNumber); }
            if (!more) break;
            if (reader.NodeType != XmlNodeType.Element) continue;
            var line = info.LineNumber;
            if (reader.Depth == 0)
            {
                if (reader.LocalName != "Document" || !reader.NamespaceURI.StartsWith(NamespacePrefix, StringComparison.Ordinal)
                    || !int.TryParse(reader.NamespaceURI.AsSpan(NamespacePrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var version)
                    || version is < 2 or > 13)
                    throw new UnsupportedStatementException($"Not a camt.053 document: root <{reader.LocalName}> in namespace '{reader.NamespaceURI}' (expected {NamespacePrefix}02 to .13).");
                _ns = reader.NamespaceURI;
                continue;
            }
            if (reader.NamespaceURI != _ns) continue;
            switch (reader.LocalName)
            {
                case "Stmt" when reader.Depth == 2:
                    if (++statements > 1) throw new StatementFormatException("More than one Stmt: one statement per file.", line, "Stmt");
                    break;
                case "Id" when reader.Depth == 3 && statements == 1:
                    Header.Reference = Text(Load(reader), 35);
                    break;
                case "Acct" when reader.Depth == 3:
                    var acct = Load(reader);
                    Header.Account = Text(acct.Element(N("Id"))?.Element(N("IBAN")), 34) ?? Text(acct.Element(N("Id"))?.Element(N("Othr"))?.Element(N("Id")), 34)
                        ?? throw Error("Acct/Id has neither IBAN nor Othr/Id.", acct, "Acct");
                    if (Text(acct.Element(N("Ccy")), 3) is { } ccy) Header.Currency = ccy;
                    break;
                case "Bal" when reader.Depth == 3:
                    var bal = Load(reader);
                    var type = Text(bal.Element(N("Tp"))?.Element(N("CdOrPrtry"))?.Element(N("Cd")), 4) ?? throw Error("Bal needs Tp/CdOrPrtry/Cd.", bal, "Bal/Tp");
                    if (type is not ("OPBD" or "PRCD" or "CLBD")) break;
                    var (amount, currency) = Amount(bal, "Bal");
                    var signed = Sign(bal, "Bal") * amount;
                    CheckCurrency(currency, bal, "Bal/Amt");
                    if (type == "CLBD")
                    {
                        if (closingSeen) throw Error("Two closing balances (CLBD).", bal, "Bal");
                        closingSeen = true;
                        Header.Closing = signed;
                        Header.ClosingDate = Date(bal.Element(N("Dt")), "Bal/Dt") ?? throw Error("Bal needs Dt/Dt.", bal, "Bal/Dt");
                        Header.ClosingLine = LineOf(bal);
                    }
                    else
                    {
                        if (openingSeen) throw Error("Two opening balances (OPBD/PRCD).", bal, "Bal");
                        openingSeen = true;
                        Header.Opening = signed;
                    }
                    break;
                case "Ntry" when reader.Depth == 3:
                    yield return Entry(Load(reader));
                    break;
            }
        }
        if (statements == 0) throw new StatementFormatException("No BkToCstmrStmt/Stmt element.", info.LineNumber, "Stmt");
        if (!openingSeen) throw new StatementFormatException("No opening balance (Bal with Tp/CdOrPrtry/Cd OPBD or PRCD).", info.LineNumber, "Bal");
        if (!closingSeen) throw new StatementFormatException("No closing balance (Bal with Tp/CdOrPrtry/Cd CLBD).", info.LineNumber, "Bal");
    }

    XName N(string local) => XName.Get(local, _ns);

    /// <summary>The element under the reader as a small tree with line numbers; the reader is left on its end tag.</summary>
    static XElement Load(XmlReader reader)
    {
        try
        {
            using var subtree = reader.ReadSubtree();
            return XElement.Load(subtree, LoadOptions.SetLineInfo);
        }
        catch (XmlException e) { throw new StatementFormatException("Not well-formed XML: " + e.Message, e.LineNumber); }
    }

    ParsedLine Entry(XElement e)
    {
        var (amount, currency) = Amount(e, "Ntry");
        if (amount == 0) throw Error("Ntry/Amt must not be zero.", e, "Ntry/Amt");
        CheckCurrency(currency, e, "Ntry/Amt");
        var sign = Sign(e, "Ntry");
        var rvsl = Text(e.Element(N("RvslInd")), 5);
        if (rvsl is not (null or "true" or "false")) throw Error($"RvslInd '{rvsl}' is neither true nor false.", e, "Ntry/RvslInd");
        var booking = Date(e.Element(N("BookgDt")), "Ntry/BookgDt");
        var value = Date(e.Element(N("ValDt")), "Ntry/ValDt") ?? booking ?? throw Error("Ntry needs ValDt or BookgDt.", e, "Ntry/ValDt");
        var tx = e.Element(N("NtryDtls"))?.Element(N("TxDtls"));
        var refs = tx?.Element(N("Refs"));
        var e2e = Text(refs?.Element(N("EndToEndId")), 35);
        var reference = e2e is not null && e2e != "NOTPROVIDED" ? e2e : Text(refs?.Element(N("InstrId")), 35);
        var description = Text(e.Element(N("AddtlNtryInf")), 500) ?? Text(tx?.Element(N("RmtInf"))?.Element(N("Ustrd")), 500);
        var bankReference = Text(e.Element(N("AcctSvcrRef")), 35) ?? Text(e.Element(N("NtryRef")), 35);
        return new ParsedLine(LineOf(e), value, booking, sign * amount, reference, bankReference, rvsl == "true" ? "[reversal] " + description : description);
    }

    (long Amount, string Currency) Amount(XElement parent, string where)
    {
        var amt = parent.Element(N("Amt")) ?? throw Error($"{where} needs Amt.", parent, where + "/Amt");
        var currency = (string?)amt.Attribute("Ccy") ?? throw Error($"{where}/Amt needs the Ccy attribute.", amt, where + "/Amt");
        var value = Amounts.Parse(amt.Value.Trim(), '.', scale) ?? throw Error($"{where}/Amt '{amt.Value}' is not an amount with at most {scale} decimals.", amt, where + "/Amt");
        return (value, currency);
    }

    int Sign(XElement parent, string where) => Text(parent.Element(N("CdtDbtInd")), 4) switch
    {
        "CRDT" => 1,
        "DBIT" => -1,
        var other => throw Error($"{where}/CdtDbtInd '{other}' is neither CRDT nor DBIT.", parent, where + "/CdtDbtInd"),
    };

    void CheckCurrency(string currency, XElement at, string where)
    {
        Header.Currency ??= currency;
        if (currency != Header.Currency) throw Error($"{where} currency {currency} differs from the statement's {Header.Currency}.", at, where);
    }

    DateOnly? Date(XElement? holder, string where)
    {
        if (holder is null) return null;
        var dt = holder.Element(N("Dt"));
        if (dt is not null)
            return DateOnly.TryParseExact(dt.Value.Trim(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d) ? d
                : throw Error($"{where}/Dt '{dt.Value}' is not a date (YYYY-MM-DD).", dt, where + "/Dt");
        var dtTm = holder.Element(N("DtTm"));
        if (dtTm is not null)
            return DateTimeOffset.TryParse(dtTm.Value.Trim(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? DateOnly.FromDateTime(t.DateTime)
                : throw Error($"{where}/DtTm '{dtTm.Value}' is not a date-time.", dtTm, where + "/DtTm");
        throw Error($"{where} needs Dt or DtTm.", holder, where);
    }

    static string? Text(XElement? e, int lengthMax)
    {
        if (e is null) return null;
        var t = e.Value.Trim();
        if (t.Length == 0) return null;
        return t.Length > lengthMax ? t[..lengthMax] : t;
    }

    static int LineOf(XObject o) => o is IXmlLineInfo i && i.HasLineInfo() ? i.LineNumber : 0;

    static StatementFormatException Error(string message, XObject at, string element) => new(message, LineOf(at), element);
}

/// <summary>The file is not of a format (or version) this product reads.</summary>
internal sealed class UnsupportedStatementException(string message) : Exception(message);
