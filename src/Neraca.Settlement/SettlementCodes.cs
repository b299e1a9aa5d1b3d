namespace Neraca.Settlement;

/// <summary>Stable error codes of settlement and reconciliation (docs/errors.md). Part of the API contract.</summary>
public static class SettlementCodes
{
    public const string ValidationFailed = "validation_failed";
    public const string ServerKeyRequired = "server_key_required";
    public const string CounterpartyNotFound = "counterparty_not_found";
    public const string CounterpartyExists = "counterparty_exists";
    /// <summary>A counterparty names an account the ledger does not have, or accounts of different ledgers.</summary>
    public const string CounterpartyAccountInvalid = "counterparty_account_invalid";
    public const string RunNotFound = "settlement_run_not_found";
    /// <summary>The business date of a counterparty was settled before (by another run).</summary>
    public const string AlreadySettled = "settlement_already_run";
    /// <summary>The business date has not begun for the counterparty, or is a closed day of its calendar.</summary>
    public const string NotABusinessDate = "not_a_business_date";
    public const string NothingToSettle = "nothing_to_settle";
    public const string StatementNotFound = "statement_not_found";
    /// <summary>The statement file breaks its format; the problem names the <c>line</c> (and the element for XML).</summary>
    public const string StatementInvalid = "statement_invalid";
    /// <summary>Opening balance + the lines does not give the closing balance (or a running balance).</summary>
    public const string StatementUnbalanced = "statement_unbalanced";
    public const string StatementCurrencyMismatch = "statement_currency_mismatch";
    public const string StatementFormatUnsupported = "statement_format_unsupported";
    public const string StatementTooLarge = "payload_too_large";
    /// <summary>A CSV statement for a counterparty without a CSV column mapping.</summary>
    public const string CsvMappingRequired = "csv_mapping_required";
    public const string ExceptionNotFound = "exception_not_found";
    public const string ExceptionAlreadyResolved = "exception_already_resolved";
    /// <summary>The resolution does not apply to this kind of exception (match for an unmatched transfer).</summary>
    public const string ResolutionNotApplicable = "resolution_not_applicable";
    public const string TransferAlreadyMatched = "transfer_already_matched";
    /// <summary>A manual match whose transfers are not on the counterparty's cash account, not posted, or do not sum to the line.</summary>
    public const string MatchInvalid = "match_invalid";
    public const string SuspenseAccountRequired = "suspense_account_required";
    /// <summary>The ledger refused the adjustment transfer of a write-off; <c>ledger_code</c> says why.</summary>
    public const string WriteOffFailed = "write_off_failed";
}
