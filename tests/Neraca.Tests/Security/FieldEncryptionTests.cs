using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Neraca.Jobs;
using Neraca.Security;
using Neraca.Storage;
using Neraca.Tests.Jobs;

namespace Neraca.Tests.Security;

/// <summary>The one key ring for personal and bank data: values bound to their row, keys that rotate, a ring shared by
/// replicas when none is configured, and the re-encryption job that moves old values to the active key.</summary>
public sealed class FieldEncryptionTests
{
    static string NewKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    static KeyRing Ring(string active, params string[] ids) =>
        KeyRing.Create(active, ids.ToDictionary(i => i, _ => NewKey()), NewKey());

    [Fact]
    public void A_value_decrypts_only_in_its_own_context_and_names_its_key()
    {
        var ring = Ring("k1", "k1");
        var context = KeyRing.Context("customers", "phone", "t1", "c1");
        var stored = ring.Encrypt("+6281234567890", context);

        Assert.StartsWith("e1:k1:", stored);
        Assert.DoesNotContain("81234567890", stored);
        Assert.Equal("+6281234567890", ring.Decrypt(stored, context));
        // Copied to another row or tenant, or altered by one bit: refused.
        Assert.ThrowsAny<CryptographicException>(() => ring.Decrypt(stored, KeyRing.Context("customers", "phone", "t2", "c1")));
        Assert.ThrowsAny<CryptographicException>(() => ring.Decrypt(stored, KeyRing.Context("customers", "phone", "t1", "c2")));
        var bytes = Convert.FromBase64String(stored["e1:k1:".Length..]);
        bytes[^1] ^= 1;
        Assert.ThrowsAny<CryptographicException>(() => ring.Decrypt("e1:k1:" + Convert.ToBase64String(bytes), context));
        // Two encryptions of one value differ (random nonce): equal ciphertexts reveal nothing.
        Assert.NotEqual(stored, ring.Encrypt("+6281234567890", context));
    }

    [Fact]
    public void Lookup_hashes_are_stable_and_differ_per_tenant_and_purpose()
    {
        var ring = Ring("k1", "k1");
        Assert.Equal(ring.LookupHash("phone", "t1", "+62812"), ring.LookupHash("phone", "t1", "+62812"));
        Assert.NotEqual(ring.LookupHash("phone", "t1", "+62812"), ring.LookupHash("phone", "t2", "+62812"));
        Assert.NotEqual(ring.LookupHash("phone", "t1", "+62812"), ring.LookupHash("email", "t1", "+62812"));
        Assert.Matches("^[0-9a-f]{64}$", ring.LookupHash("phone", "t1", "+62812"));
    }

    [Theory]
    [InlineData("k1", 31, "exactly 32 bytes")]
    [InlineData("missing", 32, "is not one of the keys")]
    public void A_bad_key_ring_is_refused_with_the_reason(string active, int keyBytes, string reason)
    {
        var e = Assert.Throws<FormatException>(() => KeyRing.Create(active,
            new Dictionary<string, string> { ["k1"] = Convert.ToBase64String(new byte[keyBytes]) }, NewKey()));
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Masks_show_enough_to_recognise_and_no_more()
    {
        Assert.Equal("******7890", Masking.Tail("1234567890"));
        Assert.Equal("***", Masking.Tail("123"));
        Assert.Equal("B*** S******", Masking.Name("Budi Santoso"));
        Assert.Equal("b***@example.co.id", Masking.Email("budi@example.co.id"));
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task Without_configured_keys_every_replica_uses_the_one_ring_kept_in_the_database(StoreKind kind)
    {
        await using var rig = await JobRig.CreateAsync(kind);
        await using var a = Database.Create(rig.Setting, "unused");
        await using var b = Database.Create(rig.Setting, "unused");
        var context = KeyRing.Context("t", "c", "tenant", "row");
        // Both start at once: the first insert wins and the other reads it.
        var rings = await Task.WhenAll(Encryption(a).GetAsync(default).AsTask(), Encryption(b).GetAsync(default).AsTask());

        Assert.Equal("secret", rings[1].Decrypt(rings[0].Encrypt("secret", context), context));
        Assert.Equal(2, await rig.ScalarAsync<long>("SELECT count(*) FROM encryption_keys"));
    }

    [Fact]
    public async Task A_rotated_key_file_is_picked_up_without_a_restart_and_old_values_stay_readable()
    {
        await using var rig = await JobRig.CreateAsync(StoreKind.Sqlite);
        var file = Path.Combine(Path.GetTempPath(), $"neraca-test-keys-{Guid.NewGuid():N}.json");
        try
        {
            var k1 = NewKey();
            var lookup = NewKey();
            WriteRing(file, "k1", new() { ["k1"] = k1 }, lookup);
            var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
            await using var database = Database.Create(rig.Setting, "unused");
            var encryption = Encryption(database, new EncryptionOptions { KeysFile = file }, clock);
            var context = KeyRing.Context("t", "c", "tenant", "row");
            var old = (await encryption.GetAsync(default)).Encrypt("secret", context);

            WriteRing(file, "k2", new() { ["k1"] = k1, ["k2"] = NewKey() }, lookup);
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddSeconds(5));
            Assert.Equal("k1", (await encryption.GetAsync(default)).ActiveKeyId); // not re-read before the check interval
            clock.Advance(TimeSpan.FromSeconds(6));
            var ring = await encryption.GetAsync(default);

            Assert.Equal("k2", ring.ActiveKeyId);
            Assert.StartsWith("e1:k2:", ring.Encrypt("new", context));
            Assert.Equal("secret", ring.Decrypt(old, context));
            Assert.False(ring.IsActive(old));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task The_reencryption_job_moves_every_old_value_to_the_active_key(StoreKind kind)
    {
        await using var rig = await JobRig.CreateAsync(kind);
        await rig.ExecuteAsync("CREATE TABLE test_people (tenant_id text NOT NULL, id text NOT NULL, phone text NULL, email text NULL, PRIMARY KEY (tenant_id, id))");
        var k1 = NewKey();
        var lookup = NewKey();
        var before = KeyRing.Create("k1", new Dictionary<string, string> { ["k1"] = k1 }, lookup);
        var rows = Enumerable.Range(0, 1_203).Select(i => (Tenant: i % 2 == 0 ? "t1" : "t2", Id: $"p{i:D5}")).ToList();
        foreach (var chunk in rows.Chunk(500))
            await rig.ExecuteAsync("INSERT INTO test_people (tenant_id, id, phone, email) VALUES (@Tenant, @Id, @Phone, @Email)", chunk.Select(r => new
            {
                r.Tenant,
                r.Id,
                Phone = before.Encrypt("+62" + r.Id, KeyRing.Context("test_people", "phone", r.Tenant, r.Id)),
                Email = r.Id.EndsWith('7') ? null : before.Encrypt(r.Id + "@example.com", KeyRing.Context("test_people", "email", r.Tenant, r.Id)),
            }));

        var options = new EncryptionOptions { ActiveKey = "k2", LookupKey = lookup, Keys = new() { ["k1"] = k1, ["k2"] = NewKey() } };
        await using var database = Database.Create(rig.Setting, "unused");
        var job = new ReencryptJob(Encryption(database, options), [new EncryptedColumns("test_people", "id", ["phone", "email"])]);
        var replica = rig.Replica(TimeProvider.System, [job]); // the job throttles itself in real time
        await replica.Store.EnqueueAsync(new JobRequest("default", ReencryptJob.TypeName), default);
        Assert.True(await replica.Worker.TryRunNextAsync(default));

        var after = KeyRing.Create("k2", options.Keys, lookup);
        var stored = await rig.QueryAsync<(string Tenant, string Id, string Phone, string? Email)>("SELECT tenant_id, id, phone, email FROM test_people");
        Assert.Equal(rows.Count, stored.Count);
        Assert.All(stored, r =>
        {
            Assert.StartsWith("e1:k2:", r.Phone);
            Assert.Equal("+62" + r.Id, after.Decrypt(r.Phone, KeyRing.Context("test_people", "phone", r.Tenant, r.Id)));
            if (r.Id.EndsWith('7')) Assert.Null(r.Email);
            else Assert.Equal(r.Id + "@example.com", after.Decrypt(r.Email!, KeyRing.Context("test_people", "email", r.Tenant, r.Id)));
        });
        var state = await rig.ScalarAsync<int>("SELECT state FROM jobs WHERE type = @type", new { type = ReencryptJob.TypeName });
        Assert.Equal((int)JobState.Succeeded, state);
    }

    static FieldEncryption Encryption(Database database, EncryptionOptions? options = null, TimeProvider? clock = null) =>
        new(database, Options.Create(options ?? new EncryptionOptions()), clock ?? TimeProvider.System, NullLogger<FieldEncryption>.Instance);

    static void WriteRing(string path, string active, Dictionary<string, string> keys, string lookup) =>
        File.WriteAllText(path, JsonSerializer.Serialize(new Dictionary<string, object> { ["active_key"] = active, ["keys"] = keys, ["lookup_key"] = lookup }));
}
