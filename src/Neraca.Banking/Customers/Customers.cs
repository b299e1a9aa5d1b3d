using System.Data.Common;
using System.Text.Json;
using System.Text.RegularExpressions;
using Dapper;
using Neraca.Banking.Audit;
using Neraca.Events;
using Neraca.Hosting;
using Neraca.Ledger;
using Neraca.Security;
using Neraca.Storage;

namespace Neraca.Banking.Customers;

/// <summary>A new customer or a change (PATCH: null fields stay as they are). <c>subject</c> is the end-user subject whose
/// tokens act for the customer (default: the customer's id); it cannot change.</summary>
public sealed record CustomerRequest(string? Id = null, string? Subject = null, string? Name = null, string? Phone = null, string? Email = null,
    string? NationalId = null, string? KycLevel = null, string? Status = null);

/// <summary>A customer: whole on a single customer's GET, masked in lists (<see cref="Masking"/>).</summary>
public sealed record CustomerResponse(string Id, string Subject, string Name, string? Phone, string? Email, string? NationalId, string KycLevel,
    string Status, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>What banking keeps about a customer, decrypted.</summary>
public sealed record Customer(string Id, string Subject, string Name, string? Phone, string? Email, string? NationalId, string KycLevel, string Status,
    long CreatedAtUs, long UpdatedAtUs)
{
    public CustomerResponse ToResponse() =>
        new(Id, Subject, Name, Phone, Email, NationalId, KycLevel, Status, DbTime.FromMicros(CreatedAtUs), DbTime.FromMicros(UpdatedAtUs));

    public CustomerResponse ToMasked() =>
        new(Id, Subject, Masking.Name(Name), Phone is null ? null : Masking.Tail(Phone), Email is null ? null : Masking.Email(Email),
            NationalId is null ? null : Masking.Tail(NationalId), KycLevel, Status, DbTime.FromMicros(CreatedAtUs), DbTime.FromMicros(UpdatedAtUs));
}

/// <summary>Customers: personal data encrypted at rest with the platform key ring (key id in each value, rotation by
/// <c>encryption.reencrypt</c>), keyed hashes for exact lookups by phone, email or national id, masked in lists and in
/// the audit log. An end user reaches only the customer whose subject it is.</summary>
public sealed partial class Customers(Database database, SqlDialect dialect, FieldEncryption encryption, TimeProvider clock)
{
    public const string Table = "banking_customers";
    public static readonly string[] EncryptedColumns = ["name", "phone", "email", "national_id"];
    public const int NameLengthMax = 200;

    static readonly string[] KycLevels = ["basic", "full"];
    static readonly string[] Statuses = ["active", "suspended", "closed"];

    [GeneratedRegex(@"^\+?[0-9]{6,20}$")]
    private static partial Regex PhonePattern();

    [GeneratedRegex(@"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")]
    private static partial Regex EmailPattern();

    [GeneratedRegex(@"^[A-Za-z0-9]{1,32}$")]
    private static partial Regex NationalIdPattern();

    public static string? NormalizePhone(string? phone) =>
        phone is null ? null : new string(phone.Where(c => c is not (' ' or '-' or '(' or ')' or '.')).ToArray());

    public static string? NormalizeEmail(string? email) => email?.Trim().ToLowerInvariant();

    public static string? NormalizeNationalId(string? id) => id?.Trim().ToUpperInvariant();

    const string Columns = "id, subject, name, phone, email, national_id, kyc_level, status, created_at_us, updated_at_us";

    public async Task<BankResult<CustomerResponse>> CreateAsync(BankCaller caller, CustomerRequest body, CancellationToken ct)
    {
        if (caller.IsEndUser) return BankError.ServerOnly("create customers");
        var errors = Validate(body, creating: true);
        if (errors.Count > 0) return BankError.Invalid(errors);
        var now = DbTime.ToMicros(clock.GetUtcNow());
        var c = new Customer(body.Id!, body.Subject ?? body.Id!, body.Name!.Trim(), NormalizePhone(body.Phone), NormalizeEmail(body.Email),
            NormalizeNationalId(body.NationalId), body.KycLevel ?? "basic", body.Status ?? "active", now, now);
        var ring = await encryption.GetAsync(ct);
        await using var connection = await database.OpenAsync(ct);
        try
        {
            await using var tx = await dialect.BeginWriteAsync(connection, ct);
            await connection.ExecuteAsync(new CommandDefinition($"""
                INSERT INTO banking_customers (tenant_id, {Columns}, phone_hash, email_hash, national_id_hash)
                VALUES (@tenantId, @id, @subject, @name, @phone, @email, @national_id, @kyc_level, @status, @created_at_us, @updated_at_us,
                        @phone_hash, @email_hash, @national_id_hash)
                """, Parameters(caller.TenantId, c, ring), tx, cancellationToken: ct));
            await AuditLog.AppendAsync(connection, tx, caller, "customer.created", "customer", c.Id, AuditFields(c, null), now, ct);
            await EventLog.AppendAsync(connection, tx, caller.TenantId, null, new NewEvent(BankingEventTypes.CustomerCreated, c.Id,
                JsonSerializer.Serialize(new { id = c.Id, kyc_level = c.KycLevel, status = c.Status })), now, ct);
            await tx.CommitAsync(ct);
            return BankResult<CustomerResponse>.Created(c.ToResponse());
        }
        catch (DbException e) when (Database.IsUniqueViolation(e))
        {
            var existing = await FindAsync(caller.TenantId, c.Id, ct);
            if (existing is null) return BankError.Conflict(BankingCodes.SubjectTaken, $"Another customer acts for subject '{c.Subject}'.");
            return existing with { CreatedAtUs = 0, UpdatedAtUs = 0 } == c with { CreatedAtUs = 0, UpdatedAtUs = 0 }
                ? BankResult<CustomerResponse>.Replayed(existing.ToResponse())
                : BankError.Conflict(BankingCodes.CustomerExists, $"Customer '{c.Id}' exists with different fields.");
        }
    }

    public async Task<BankResult<CustomerResponse>> UpdateAsync(BankCaller caller, string id, CustomerRequest body, CancellationToken ct)
    {
        if (caller.IsEndUser) return BankError.ServerOnly("change customers");
        var errors = Validate(body, creating: false);
        if (errors.Count > 0) return BankError.Invalid(errors);
        var ring = await encryption.GetAsync(ct);
        await using var connection = await database.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteAsync(connection, ct);
        var old = await FindAsync(connection, tx, caller.TenantId, id, ring, lockRow: true, ct);
        if (old is null) return BankError.NotFound(BankingCodes.CustomerNotFound, $"No customer '{id}'.");
        if (body.Id is not null && body.Id != id) return BankError.Invalid("id", "The id cannot change.");
        if (body.Subject is not null && body.Subject != old.Subject) return BankError.Invalid("subject", "The subject cannot change.");
        var now = DbTime.ToMicros(clock.GetUtcNow());
        var c = old with
        {
            Name = body.Name?.Trim() ?? old.Name, Phone = NormalizePhone(body.Phone) ?? old.Phone, Email = NormalizeEmail(body.Email) ?? old.Email,
            NationalId = NormalizeNationalId(body.NationalId) ?? old.NationalId, KycLevel = body.KycLevel ?? old.KycLevel, Status = body.Status ?? old.Status,
        };
        if (c with { UpdatedAtUs = 0 } == old with { UpdatedAtUs = 0 }) return BankResult<CustomerResponse>.Ok(old.ToResponse());
        c = c with { UpdatedAtUs = now };
        await connection.ExecuteAsync(new CommandDefinition("""
            UPDATE banking_customers SET name = @name, phone = @phone, email = @email, national_id = @national_id, kyc_level = @kyc_level, status = @status,
                updated_at_us = @updated_at_us, phone_hash = @phone_hash, email_hash = @email_hash, national_id_hash = @national_id_hash
            WHERE tenant_id = @tenantId AND id = @id
            """, Parameters(caller.TenantId, c, ring), tx, cancellationToken: ct));
        var changed = AuditFields(c, old).ToList();
        await AuditLog.AppendAsync(connection, tx, caller, "customer.updated", "customer", id, changed, now, ct);
        await EventLog.AppendAsync(connection, tx, caller.TenantId, null, new NewEvent(BankingEventTypes.CustomerUpdated, id,
            JsonSerializer.Serialize(new { id, changed = changed.Select(kv => kv.Key).ToArray(), kyc_level = c.KycLevel, status = c.Status })), now, ct);
        await tx.CommitAsync(ct);
        return BankResult<CustomerResponse>.Ok(c.ToResponse());
    }

    public async Task<BankResult<CustomerResponse>> GetAsync(BankCaller caller, string id, CancellationToken ct) =>
        await FindAsync(caller.TenantId, id, ct) is { } c && Reaches(caller, c)
            ? BankResult<CustomerResponse>.Ok(c.ToResponse())
            : BankError.NotFound(BankingCodes.CustomerNotFound, $"No customer '{id}'.");

    /// <summary>A page of customers by id, masked; <paramref name="phone"/>, <paramref name="email"/> and
    /// <paramref name="nationalId"/> are exact lookups through the keyed hashes. An end user sees only itself.</summary>
    public async Task<BankResult<Page<CustomerResponse>>> ListAsync(BankCaller caller, string? phone, string? email, string? nationalId, int? limit,
        string? after, CancellationToken ct)
    {
        if (limit is < 1 or > 1000) return BankError.Invalid("limit", "Must be from 1 to 1000.");
        var take = limit ?? 100;
        var afterId = Cursor.Decode(after);
        var ring = await encryption.GetAsync(ct);
        var args = new DynamicParameters(new { tenantId = caller.TenantId, take = take + 1, afterId, subject = caller.Subject });
        var filter = "";
        if (phone is not null) { filter += " AND phone_hash = @phoneHash"; args.Add("phoneHash", ring.LookupHash("banking.phone", caller.TenantId, NormalizePhone(phone)!)); }
        if (email is not null) { filter += " AND email_hash = @emailHash"; args.Add("emailHash", ring.LookupHash("banking.email", caller.TenantId, NormalizeEmail(email)!)); }
        if (nationalId is not null)
        {
            filter += " AND national_id_hash = @nidHash";
            args.Add("nidHash", ring.LookupHash("banking.national_id", caller.TenantId, NormalizeNationalId(nationalId)!));
        }
        await using var connection = await database.OpenReadAsync(ct);
        var rows = (await connection.QueryAsync<Row>(new CommandDefinition($"""
            SELECT {Columns} FROM banking_customers
            WHERE tenant_id = @tenantId AND (@afterId IS NULL OR id > @afterId) AND (@subject IS NULL OR subject = @subject){filter}
            ORDER BY id LIMIT @take
            """, args, cancellationToken: ct))).ToList();
        var more = rows.Count > take;
        if (more) rows.RemoveAt(rows.Count - 1);
        var data = rows.Select(r => r.Decrypt(caller.TenantId, ring).ToMasked()).ToList();
        return BankResult<Page<CustomerResponse>>.Ok(new Page<CustomerResponse>(data, more ? Cursor.Encode(rows[^1].id) : null));
    }

    public static bool Reaches(BankCaller caller, Customer c) => caller.Subject is null || caller.Subject == c.Subject;

    public async Task<Customer?> FindAsync(string tenantId, string id, CancellationToken ct)
    {
        var ring = await encryption.GetAsync(ct);
        await using var connection = await database.OpenAsync(ct);
        return await FindAsync(connection, null, tenantId, id, ring, lockRow: false, ct);
    }

    async Task<Customer?> FindAsync(DbConnection connection, DbTransaction? tx, string tenantId, string id, KeyRing ring, bool lockRow, CancellationToken ct)
    {
        var row = await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            $"SELECT {Columns} FROM banking_customers WHERE tenant_id = @tenantId AND id = @id{(lockRow ? dialect.ForUpdate : "")}", new { tenantId, id }, tx,
            cancellationToken: ct));
        return row?.Decrypt(tenantId, ring);
    }

    static DynamicParameters Parameters(string tenantId, Customer c, KeyRing ring)
    {
        string? Seal(string column, string? value) => value is null ? null : ring.Encrypt(value, KeyRing.Context(Table, column, tenantId, c.Id));
        return new DynamicParameters(new
        {
            tenantId, id = c.Id, subject = c.Subject, name = Seal("name", c.Name), phone = Seal("phone", c.Phone), email = Seal("email", c.Email),
            national_id = Seal("national_id", c.NationalId), kyc_level = c.KycLevel, status = c.Status, created_at_us = c.CreatedAtUs, updated_at_us = c.UpdatedAtUs,
            phone_hash = c.Phone is null ? null : ring.LookupHash("banking.phone", tenantId, c.Phone),
            email_hash = c.Email is null ? null : ring.LookupHash("banking.email", tenantId, c.Email),
            national_id_hash = c.NationalId is null ? null : ring.LookupHash("banking.national_id", tenantId, c.NationalId),
        });
    }

    /// <summary>The fields of <paramref name="c"/> that differ from <paramref name="old"/> (all when new), personal data masked.</summary>
    static IEnumerable<KeyValuePair<string, object?>> AuditFields(Customer c, Customer? old)
    {
        if (old is null || old.Name != c.Name) yield return new("name", Masking.Name(c.Name));
        if (old is null || old.Phone != c.Phone) yield return new("phone", c.Phone is null ? null : Masking.Tail(c.Phone));
        if (old is null || old.Email != c.Email) yield return new("email", c.Email is null ? null : Masking.Email(c.Email));
        if (old is null || old.NationalId != c.NationalId) yield return new("national_id", c.NationalId is null ? null : Masking.Tail(c.NationalId));
        if (old is null || old.KycLevel != c.KycLevel) yield return new("kyc_level", c.KycLevel);
        if (old is null || old.Status != c.Status) yield return new("status", c.Status);
        if (old is null) yield return new("subject", c.Subject);
    }

    static Dictionary<string, string[]> Validate(CustomerRequest b, bool creating)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        void Add(string field, string message) => errors[field] = [message];
        if (creating && !BankIds.IsValid(b.Id)) Add("id", $"Required: 1-{BankIds.LengthMax} characters of A-Z a-z 0-9 . _ : -");
        if (b.Subject is not null && (b.Subject.Length is 0 or > 200 || b.Subject.Any(char.IsControl))) Add("subject", "1-200 characters.");
        if (creating && string.IsNullOrWhiteSpace(b.Name)) Add("name", "Required.");
        else if (b.Name is not null && (b.Name.Trim().Length is 0 or > NameLengthMax || b.Name.Any(char.IsControl))) Add("name", $"1-{NameLengthMax} characters.");
        if (b.Phone is not null && !PhonePattern().IsMatch(NormalizePhone(b.Phone)!)) Add("phone", "6-20 digits, optionally after '+'.");
        if (b.Email is not null && (b.Email.Length > 254 || !EmailPattern().IsMatch(b.Email.Trim()))) Add("email", "Not an email address.");
        if (b.NationalId is not null && !NationalIdPattern().IsMatch(b.NationalId.Trim())) Add("national_id", "1-32 letters or digits.");
        if (b.KycLevel is not null && !KycLevels.Contains(b.KycLevel)) Add("kyc_level", "Either \"basic\" or \"full\".");
        if (b.Status is not null && !Statuses.Contains(b.Status)) Add("status", "One of \"active\", \"suspended\", \"closed\".");
        return errors;
    }

    internal sealed class Row
    {
        public string id { get; set; } = "";
        public string subject { get; set; } = "";
        public string name { get; set; } = "";
        public string? phone { get; set; }
        public string? email { get; set; }
        public string? national_id { get; set; }
        public string kyc_level { get; set; } = "";
        public string status { get; set; } = "";
        public long created_at_us { get; set; }
        public long updated_at_us { get; set; }

        public Customer Decrypt(string tenantId, KeyRing ring)
        {
            string? Open(string column, string? value) => value is null ? null : ring.Decrypt(value, KeyRing.Context(Table, column, tenantId, id));
            return new Customer(id, subject, Open("name", name)!, Open("phone", phone), Open("email", email), Open("national_id", national_id), kyc_level,
                status, created_at_us, updated_at_us);
        }
    }
}
