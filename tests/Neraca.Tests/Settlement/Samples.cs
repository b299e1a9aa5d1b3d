using System.Globalization;

namespace Neraca.Tests.Settlement;

/// <summary>Statement files as banks send them, for business date <c>d</c>: an MT940 and a camt.053 with credits found by
/// end-to-end id and by reference, a bank fee, a reversal, one line for a batch of three transfers, a line sent twice
/// and a line the ledger does not know.</summary>
public static class Samples
{
    static string Y(DateOnly d) => SettlementWorld.Yymmdd(d);
    static string Md(DateOnly d) => d.ToString("MMdd", CultureInfo.InvariantCulture);
    static string Iso(DateOnly d) => SettlementWorld.Iso(d);

    /// <summary>The ledger side of the samples, all on the cash account <c>bank-bca</c> on day <paramref name="d"/>.</summary>
    public static async Task SeedTransfersAsync(SettlementWorld w, DateOnly d, bool extraUnbooked = false)
    {
        await w.TransferAsync("topup-0001", "bank-bca", "alice", 15_000_000, SettlementWorld.At(d, 9, 15), new { end_to_end_id = "E2E-0001" });
        await w.TransferAsync("topup-0002", "bank-bca", "bob", 25_000_000, SettlementWorld.At(d, 9, 40), new { reference = "INV-7781" });
        await w.TransferAsync("topup-0003", "bank-bca", "alice", 7_500_000, SettlementWorld.At(d, 11, 0));
        await w.TransferAsync("fee-2611", "fees", "bank-bca", 650_000, SettlementWorld.At(d, 23, 0));
        await w.TransferAsync("topup-0004", "bank-bca", "bob", 5_000_000, SettlementWorld.At(d, 13, 5));
        var reversal = await w.Ledger.ReverseAsync(w.TenantId, "topup-0004", new Neraca.Ledger.ReverseRequest("rev-topup-0004"), default);
        Assert.True(reversal.Succeeded, reversal.Error?.Code);
        await w.TransferAsync("BATCH0142-01", "bank-bca", "alice", 1_000_000, SettlementWorld.At(d, 14, 0));
        await w.TransferAsync("BATCH0142-02", "bank-bca", "bob", 2_000_000, SettlementWorld.At(d, 14, 0));
        await w.TransferAsync("BATCH0142-03", "bank-bca", "alice", 3_000_000, SettlementWorld.At(d, 14, 1));
        if (extraUnbooked) await w.TransferAsync("topup-0005", "bank-bca", "bob", 9_900_000, SettlementWorld.At(d, 15, 30));
    }

    /// <summary>Lines: 1 E2E-0001 (exact), 2 INV-7781 (exact), 3 NONREF 75,000 (amount/date), 4 fee (amount/date, money out),
    /// 5 topup-0004 (exact), 6 RC rev-topup-0004 (exact, money out), 7 BATCH0142 (many-to-one), 8 INV-7781 again (duplicate:
    /// exception), 9 UNKNOWN-1 (exception).</summary>
    public static string Mt940(DateOnly d) => $$"""
        {1:F01BCAIIDJAXXXX0000000000}{2:O9401200{{Y(d)}}BCAIIDJAXXXX00000000002612011200N}{4:
        :20:STMT{{Y(d)}}01
        :25:BCAIIDJA/0123456789
        :28C:00331/001
        :60F:C{{Y(d.AddDays(-1))}}IDR1000000,00
        :61:{{Y(d)}}{{Md(d)}}C150000,00NTRFE2E-0001//BCA26110001
        :86:TOPUP VA 8808123 ALICE
        :61:{{Y(d)}}{{Md(d)}}C250000,00NTRFINV-7781//BCA26110002
        :86:TRSF E-BANKING CR 0112/FTSCY/WS95031
         INV-7781 PT MAJU JAYA
        :61:{{Y(d)}}{{Md(d)}}C75000,00NTRFNONREF//BCA26110003
        :86:SETORAN TUNAI
        :61:{{Y(d)}}{{Md(d)}}D6500,00NCHGNONREF//BCA26110004
        :86:BIAYA ADM
        :61:{{Y(d)}}{{Md(d)}}C50000,00NTRFtopup-0004//BCA26110005
        :61:{{Y(d)}}{{Md(d)}}RC50000,00NTRFrev-topup-0004//BCA26110006
        :86:KOREKSI
        :61:{{Y(d)}}{{Md(d)}}C60000,00NTRFBATCH0142//BCA26110007
        :86:KLIRING BATCH 0142 3 TRX
        :61:{{Y(d)}}{{Md(d)}}C250000,00NTRFINV-7781//BCA26110002
        :86:TRSF E-BANKING CR 0112/FTSCY/WS95031
        :61:{{Y(d)}}{{Md(d)}}C12345,67NTRFUNKNOWN-1//BCA26110009
        :86:TRF DARI REK 7770001234
        :62F:C{{Y(d)}}IDR1790845,67
        :64:C{{Y(d)}}IDR1790845,67
        -}
        """;

    public const int Mt940Lines = 9;

    /// <summary>The same statement with a letter in an amount on file line 12 (the fourth :61:).</summary>
    public static string Mt940Malformed(DateOnly d) => Mt940(d).Replace("D6500,00NCHG", "D65OO,00NCHG", StringComparison.Ordinal);

    /// <summary>The same statement with a closing balance one rupiah off.</summary>
    public static string Mt940Unbalanced(DateOnly d) => Mt940(d).Replace(":62F:C" + Y(d) + "IDR1790845,67", ":62F:C" + Y(d) + "IDR1790846,67", StringComparison.Ordinal);

    static string Entry(DateOnly d, string amount, string direction, string? e2e, string? info, string bankRef, bool reversal = false, string? instrId = null) => $"""
                <Ntry>
                  <NtryRef>{bankRef}</NtryRef>
                  <Amt Ccy="IDR">{amount}</Amt>
                  <CdtDbtInd>{direction}</CdtDbtInd>
                  {(reversal ? "<RvslInd>true</RvslInd>" : "")}
                  <Sts><Cd>BOOK</Cd></Sts>
                  <BookgDt><Dt>{Iso(d)}</Dt></BookgDt>
                  <ValDt><Dt>{Iso(d)}</Dt></ValDt>
                  <AcctSvcrRef>{bankRef}</AcctSvcrRef>
                  <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
                  <NtryDtls><TxDtls><Refs>{(instrId is null ? "" : $"<InstrId>{instrId}</InstrId>")}<EndToEndId>{e2e ?? "NOTPROVIDED"}</EndToEndId></Refs>
                    <RmtInf><Ustrd>{info}</Ustrd></RmtInf></TxDtls></NtryDtls>
                </Ntry>
        """;

    /// <summary>camt.053 (version <paramref name="version"/>) with the same nine lines as <see cref="Mt940"/>.</summary>
    public static string Camt053(DateOnly d, string version = "08", string closing = "1790845.67") => $"""
        <?xml version="1.0" encoding="UTF-8"?>
        <Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
          <BkToCstmrStmt>
            <GrpHdr><MsgId>BCA-STMT-{Y(d)}</MsgId><CreDtTm>{Iso(d.AddDays(1))}T01:00:00+07:00</CreDtTm></GrpHdr>
            <Stmt>
              <Id>STMT{Y(d)}01</Id>
              <ElctrncSeqNb>331</ElctrncSeqNb>
              <CreDtTm>{Iso(d.AddDays(1))}T01:00:00+07:00</CreDtTm>
              <Acct><Id><Othr><Id>0123456789</Id></Othr></Id><Ccy>IDR</Ccy><Svcr><FinInstnId><BICFI>CENAIDJA</BICFI></FinInstnId></Svcr></Acct>
              <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="IDR">1000000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{Iso(d.AddDays(-1))}</Dt></Dt></Bal>
              <Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="IDR">{closing}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{Iso(d)}</Dt></Dt></Bal>
              <TxsSummry><TtlNtries><NbOfNtries>9</NbOfNtries></TtlNtries></TxsSummry>
        {Entry(d, "150000.00", "CRDT", "E2E-0001", "TOPUP VA 8808123 ALICE", "BCA26110001")}
        {Entry(d, "250000.00", "CRDT", null, "INV-7781 PT MAJU JAYA", "BCA26110002", instrId: "INV-7781")}
        {Entry(d, "75000.00", "CRDT", null, "SETORAN TUNAI", "BCA26110003")}
        {Entry(d, "6500.00", "DBIT", null, "BIAYA ADM", "BCA26110004")}
        {Entry(d, "50000.00", "CRDT", "topup-0004", "TOPUP", "BCA26110005")}
        {Entry(d, "50000.00", "DBIT", "rev-topup-0004", "KOREKSI", "BCA26110006", reversal: true)}
        {Entry(d, "60000.00", "CRDT", "BATCH0142", "KLIRING BATCH 0142 3 TRX", "BCA26110007")}
        {Entry(d, "250000.00", "CRDT", null, "INV-7781 PT MAJU JAYA", "BCA26110002", instrId: "INV-7781")}
        {Entry(d, "12345.67", "CRDT", "UNKNOWN-1", "TRF DARI REK 7770001234", "BCA26110009")}
            </Stmt>
          </BkToCstmrStmt>
        </Document>
        """;

    /// <summary>A CSV export (the counterparty's mapping: ';' separated, dd/MM/yyyy, decimal comma, running balance).</summary>
    public static string Csv(DateOnly d, string lastBalance = "1180000,00")
    {
        var day = d.ToString("dd/MM/yyyy", CultureInfo.InvariantCulture);
        return $""""
            Tanggal;Keterangan;Referensi;Jumlah;Saldo
            {day};"TOPUP VA 8808123; ALICE";E2E-0001;150000,00;1150000,00
            {day};SETORAN TUNAI;;75000,00;1225000,00
            {day};BIAYA ADM;;-6500,00;1218500,00
            {day};"KOREKSI ""MANUAL""";UNKNOWN-2;-38500,00;{lastBalance}

            """";
    }
}
