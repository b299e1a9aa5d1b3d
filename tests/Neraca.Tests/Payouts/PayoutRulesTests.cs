using System.Text;
using Neraca.Payouts;
using Neraca.Payouts.Provider;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Payouts;

/// <summary>The rules that need no server: callback signatures, request validation, the provider key, and the refusal
/// to serve the built-in sandbox in production.</summary>
public sealed class PayoutRulesTests
{
    static readonly DateTimeOffset Now = new(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);
    static readonly TimeSpan Window = TimeSpan.FromMinutes(5);

    [Fact]
    public void A_callback_signature_verifies_only_for_its_secret_body_and_time_window()
    {
        var body = Encoding.UTF8.GetBytes("""{"id":"cb_1"}""");
        var header = CallbackSignature.Sign("secret-0123456789", Now.ToUnixTimeSeconds(), body);

        Assert.True(CallbackSignature.Verify("secret-0123456789", header, body, Now.AddSeconds(299), Window));
        Assert.False(CallbackSignature.Verify("secret-0123456789", header, body, Now.AddSeconds(301), Window));
        Assert.False(CallbackSignature.Verify("secret-0123456789", header, body, Now.AddSeconds(-301), Window));
        Assert.False(CallbackSignature.Verify("another-secret-01", header, body, Now, Window));
        Assert.False(CallbackSignature.Verify("secret-0123456789", header, Encoding.UTF8.GetBytes("""{"id":"cb_2"}"""), Now, Window));
        Assert.False(CallbackSignature.Verify("secret-0123456789", header.Replace("t=", "t=1", StringComparison.Ordinal), body, Now, Window));
        Assert.False(CallbackSignature.Verify("secret-0123456789", "v1=" + header.Split("v1=")[1], body, Now, Window));
        Assert.False(CallbackSignature.Verify("secret-0123456789", "garbage", body, Now, Window));
        Assert.False(CallbackSignature.Verify("secret-0123456789", null, body, Now, Window));
    }

    [Fact]
    public void The_provider_key_is_stable_per_payout_and_differs_across_tenants()
    {
        Assert.Equal(PayoutService.ProviderKey("acme", "ewa:wd_1"), PayoutService.ProviderKey("acme", "ewa:wd_1"));
        Assert.NotEqual(PayoutService.ProviderKey("acme", "ewa:wd_1"), PayoutService.ProviderKey("other", "ewa:wd_1"));
        Assert.Matches("^npo_[0-9a-f]{40}$", PayoutService.ProviderKey("acme", "ewa:wd_1"));
        Assert.DoesNotContain("acme", PayoutService.ProviderKey("acme", "ewa:wd_1"), StringComparison.Ordinal);
    }

    [Fact]
    public void Validation_names_every_bad_field_and_accepts_a_good_request()
    {
        var good = new PayoutRequest("ewa:wd_1", "alice", 1, new PayoutDestination("ewallet", "GOPAY", "081234567890"), "EWA");
        Assert.Empty(PayoutService.Validate(good));

        var errors = PayoutService.Validate(new PayoutRequest(new string('x', 49), "", 0, new PayoutDestination("card", "x", "12"," Budi"), "\u0007",
            new string('d', 300), "Bad Type"));

        Assert.Equal(["amount", "description", "destination.account_name", "destination.account_number", "destination.code", "destination.type",
            "id", "notify_job_type", "reference", "source_account"], errors.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Production_on_postgres_refuses_to_serve_with_the_built_in_sandbox_unless_allowed()
    {
        var database = await TestStores.NewDatabaseAsync(StoreKind.Postgres);

        var (output, exitCode) = await ProcessRunner.RunForExitAsync("dotnet", [ServerProcess.ServerDll, "--urls", "http://127.0.0.1:0"],
            env: new Dictionary<string, string> { ["NERACA_DATABASE"] = database, ["ASPNETCORE_ENVIRONMENT"] = "Production" },
            timeout: TimeSpan.FromMinutes(2));

        Assert.Equal(2, exitCode);
        Assert.Contains("Invalid configuration", output, StringComparison.Ordinal);
        Assert.Contains("Payouts:Provider:Url", output, StringComparison.Ordinal);
    }
}
