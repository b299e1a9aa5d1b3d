using System.Data.Common;
using Dapper;
using Neraca.Security;
using Neraca.Storage;
using Neraca.Wellness.Employers;

namespace Neraca.Wellness.Employees;

/// <summary>Where an employee is (stored; part of the API).</summary>
public static class EmployeeStatuses
{
    public const string Active = "active";
    public const string Paused = "paused";
    public const string Terminated = "terminated";

    public static bool IsValid(string? s) => s is Active or Paused or Terminated;
}

/// <summary>The fields a roster row or a PATCH sets, decrypted.</summary>
public sealed record EmployeeFields(string Name, string? Email, string? Phone, string PayType, long PayRate, DateOnly StartDate, string BankCode, string BankAccount);

/// <summary>An employee as stored (personal and bank fields decrypted only where a caller needs them).</summary>
public sealed record Employee(string TenantId, string EmployerId, string EmployeeId, string Id, string Subject, EmployeeFields Fields, string Status,
    DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

public sealed record BankView(string Code, string AccountMasked);

/// <summary>One employee as the API shows it: whole name, email and phone on a single GET, masked in lists; the bank
/// account always masked.</summary>
public sealed record EmployeeView(string EmployeeId, string EmployerId, string Subject, string Name, string? Email, string? Phone, string PayType,
    long PayRate, string StartDate, BankView Bank, string Status, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    public static EmployeeView Of(Employee e, bool masked) => new(e.EmployeeId, e.EmployerId, e.Subject,
        masked ? Masking.Name(e.Fields.Name) : e.Fields.Name,
        masked ? (e.Fields.Email is null ? null : Masking.Email(e.Fields.Email)) : e.Fields.Email,
        masked ? (e.Fields.Phone is null ? null : Masking.Tail(e.Fields.Phone)) : e.Fields.Phone,
        e.Fields.PayType, e.Fields.PayRate, Dates.Format(e.Fields.StartDate), new BankView(e.Fields.BankCode, Masking.Tail(e.Fields.BankAccount)),
        e.Status, e.CreatedAt, e.UpdatedAt);
}

/// <summary>Reads and writes <c>ewa_employees</c>, encrypting personal and bank data with the platform key ring.</summary>
public sealed class EmployeeStore(Database database, FieldEncryption encryption)
{
    public const string Table = "ewa_employees";

    public static readonly EncryptedColumns Encrypted = new(Table, "id", ["name_enc", "email_enc", "phone_enc", "bank_account_enc"]);

    /// <summary>The end-user token subject of an employee (docs/ewa.md, "Employees sign in").</summary>
    public static string SubjectOf(string employerId, string employeeId) => $"ewa:{employerId}:{employeeId}";

    const string Columns = """
        tenant_id, employer_id, employee_id, id, subject, name_enc, email_enc, phone_enc, pay_type, pay_rate, start_date, bank_code,
        bank_account_enc, status, row_hash, created_at_us, updated_at_us
        """;

    public async Task<Employee?> GetAsync(string tenantId, string employerId, string employeeId, CancellationToken ct)
    {
        await using var connection = await database.OpenAsync(ct);
        return await GetAsync(connection, null, tenantId, employerId, employeeId, ct);
    }

    public async Task<Employee?> GetAsync(DbConnection connection, DbTransaction? tx, string tenantId, string employerId, string employeeId, CancellationToken ct)
    {
        var row = await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            $"SELECT {Columns} FROM ewa_employees WHERE tenant_id = @tenantId AND employer_id = @employerId AND employee_id = @employeeId",
            new { tenantId, employerId, employeeId }, tx, cancellationToken: ct));
        return row is null ? null : Decrypt(row, await encryption.GetAsync(ct));
    }

    public async Task<IReadOnlyList<Employee>> ListAsync(string tenantId, string employerId, string? status, string? after, int limit, CancellationToken ct)
    {
        await using var connection = await database.OpenReadAsync(ct);
        var rows = await connection.QueryAsync<Row>(new CommandDefinition($"""
            SELECT {Columns} FROM ewa_employees
            WHERE tenant_id = @tenantId AND employer_id = @employerId AND employee_id > @after AND (@status IS NULL OR status = @status)
            ORDER BY employee_id LIMIT @limit
            """, new { tenantId, employerId, after = after ?? "", status, limit }, cancellationToken: ct));
        var ring = await encryption.GetAsync(ct);
        return [.. rows.Select(r => Decrypt(r, ring))];
    }

    /// <summary>Existing row hashes of the given employees (the import's unchanged test).</summary>
    public static async Task<Dictionary<string, string>> HashesAsync(DbConnection connection, DbTransaction tx, SqlDialect dialect, string tenantId,
        string employerId, string[] employeeIds, CancellationToken ct)
    {
        var rows = await connection.QueryAsync<(string, string)>(new CommandDefinition(
            $"SELECT employee_id, row_hash FROM ewa_employees WHERE tenant_id = @tenantId AND employer_id = @employerId AND {dialect.InIdList("employee_id", "ids")}",
            new { tenantId, employerId, ids = dialect.IdListValue(employeeIds) }, tx, cancellationToken: ct));
        return rows.ToDictionary(r => r.Item1, r => r.Item2, StringComparer.Ordinal);
    }

    public static string RowHash(KeyRing ring, string tenantId, string employerId, string employeeId, EmployeeFields f) =>
        ring.LookupHash("ewa.roster", tenantId, string.Join('\u001f', employerId, employeeId, f.Name, f.Email ?? "", f.Phone ?? "", f.PayType,
            f.PayRate.ToString(System.Globalization.CultureInfo.InvariantCulture), Dates.Format(f.StartDate), f.BankCode, f.BankAccount));

    /// <summary>Inserts new employees (status active). On PostgreSQL up to 500 rows per statement, so a 50,000-row roster
    /// is a hundred round trips, not 50,000. On SQLite one row per statement: there is no round trip to save, and
    /// Microsoft.Data.Sqlite binds each parameter by searching the statement's, which grows with the square of their count.</summary>
    public static async Task InsertAsync(DbConnection connection, DbTransaction tx, SqlDialect dialect, KeyRing ring, string tenantId, string employerId,
        IReadOnlyList<(string EmployeeId, EmployeeFields Fields)> employees, long nowUs, CancellationToken ct)
    {
        foreach (var part in employees.Chunk(dialect.Choose(() => 500, () => 1)))
        {
            var p = new DynamicParameters(new { tenantId, employerId, nowUs });
            var rows = new List<string>(part.Length);
            for (var i = 0; i < part.Length; i++)
            {
                var (employeeId, f) = part[i];
                var values = Values(ring, tenantId, employerId, employeeId, "ee_" + Ids.NewUlid().ToLowerInvariant(), f);
                values["subject"] = SubjectOf(employerId, employeeId);
                foreach (var (name, value) in values) p.Add(name + i, value);
                rows.Add($"(@tenantId, @employerId, @employeeId{i}, @id{i}, @subject{i}, @name{i}, @email{i}, @phone{i}, @payType{i}, @payRate{i}, " +
                    $"@startDate{i}, @bankCode{i}, @bank{i}, 'active', @hash{i}, @nowUs, @nowUs)");
            }
            await connection.ExecuteAsync(new CommandDefinition($"INSERT INTO ewa_employees ({Columns}) VALUES {string.Join(",\n", rows)}", p, tx,
                cancellationToken: ct));
        }
    }

    /// <summary>Rewrites an employee's fields (status untouched).</summary>
    public static async Task UpdateAsync(DbConnection connection, DbTransaction tx, KeyRing ring, string tenantId, string employerId, string employeeId,
        EmployeeFields f, long nowUs, CancellationToken ct)
    {
        var id = await connection.ExecuteScalarAsync<string>(new CommandDefinition(
            "SELECT id FROM ewa_employees WHERE tenant_id = @tenantId AND employer_id = @employerId AND employee_id = @employeeId",
            new { tenantId, employerId, employeeId }, tx, cancellationToken: ct)) ?? throw new InvalidOperationException("employee vanished");
        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE ewa_employees SET name_enc = @name, email_enc = @email, phone_enc = @phone, pay_type = @payType, pay_rate = @payRate,
                start_date = @startDate, bank_code = @bankCode, bank_account_enc = @bank, row_hash = @hash, updated_at_us = @nowUs
            WHERE tenant_id = @tenantId AND employer_id = @employerId AND employee_id = @employeeId
            """, Parameters(ring, tenantId, employerId, employeeId, id, f, nowUs, null), tx, cancellationToken: ct));
    }

    public static Task<int> SetStatusAsync(DbConnection connection, DbTransaction tx, string tenantId, string employerId, string employeeId, string from,
        string to, long nowUs, CancellationToken ct) =>
        connection.ExecuteAsync(new CommandDefinition("""
            UPDATE ewa_employees SET status = @to, updated_at_us = @nowUs
            WHERE tenant_id = @tenantId AND employer_id = @employerId AND employee_id = @employeeId AND status = @from
            """, new { tenantId, employerId, employeeId, from, to, nowUs }, tx, cancellationToken: ct));

    static DynamicParameters Parameters(KeyRing ring, string tenantId, string employerId, string employeeId, string id, EmployeeFields f, long nowUs, object? extra)
    {
        var p = new DynamicParameters(Values(ring, tenantId, employerId, employeeId, id, f));
        p.AddDynamicParams(new { tenantId, employerId, nowUs });
        if (extra is not null) p.AddDynamicParams(extra);
        return p;
    }

    /// <summary>An employee's own column values, personal fields encrypted under the row's id.</summary>
    static Dictionary<string, object?> Values(KeyRing ring, string tenantId, string employerId, string employeeId, string id, EmployeeFields f)
    {
        string Enc(string column, string value) => ring.Encrypt(value, KeyRing.Context(Table, column, tenantId, id));
        return new()
        {
            ["employeeId"] = employeeId, ["id"] = id,
            ["name"] = Enc("name_enc", f.Name),
            ["email"] = f.Email is null ? null : Enc("email_enc", f.Email),
            ["phone"] = f.Phone is null ? null : Enc("phone_enc", f.Phone),
            ["payType"] = f.PayType, ["payRate"] = f.PayRate, ["startDate"] = Dates.Format(f.StartDate), ["bankCode"] = f.BankCode,
            ["bank"] = Enc("bank_account_enc", f.BankAccount),
            ["hash"] = RowHash(ring, tenantId, employerId, employeeId, f),
        };
    }

    static Employee Decrypt(Row r, KeyRing ring)
    {
        string Dec(string column, string value) => ring.Decrypt(value, KeyRing.Context(Table, column, r.tenant_id, r.id));
        return new Employee(r.tenant_id, r.employer_id, r.employee_id, r.id, r.subject,
            new EmployeeFields(Dec("name_enc", r.name_enc), r.email_enc is null ? null : Dec("email_enc", r.email_enc),
                r.phone_enc is null ? null : Dec("phone_enc", r.phone_enc), r.pay_type, r.pay_rate, Dates.Parse(r.start_date), r.bank_code,
                Dec("bank_account_enc", r.bank_account_enc)),
            r.status, DbTime.FromMicros(r.created_at_us), DbTime.FromMicros(r.updated_at_us));
    }

#pragma warning disable IDE1006 // Dapper maps snake_case columns onto these names.
    sealed class Row
    {
        public string tenant_id { get; set; } = "";
        public string employer_id { get; set; } = "";
        public string employee_id { get; set; } = "";
        public string id { get; set; } = "";
        public string subject { get; set; } = "";
        public string name_enc { get; set; } = "";
        public string? email_enc { get; set; }
        public string? phone_enc { get; set; }
        public string pay_type { get; set; } = "";
        public long pay_rate { get; set; }
        public string start_date { get; set; } = "";
        public string bank_code { get; set; } = "";
        public string bank_account_enc { get; set; } = "";
        public string status { get; set; } = "";
        public string row_hash { get; set; } = "";
        public long created_at_us { get; set; }
        public long updated_at_us { get; set; }
    }
#pragma warning restore IDE1006
}
