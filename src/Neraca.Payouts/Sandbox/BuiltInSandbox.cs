using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using Neraca.Payouts.Provider;

namespace Neraca.Payouts.Sandbox;

/// <summary>The sandbox built in to the server when no provider is configured (the embedded default's demo): the
/// provider client talks to it through <see cref="SandboxHandler"/>, and its callbacks go straight to
/// <see cref="PayoutCallbacks"/>, signed with a secret made for this process, so they are verified like any other.
/// Its memory is this process's: run one server, or the sandbox as its own process (docs/payouts.md).</summary>
public sealed class BuiltInSandbox : IDisposable
{
    public BuiltInSandbox(IOptions<PayoutsOptions> options, TimeProvider time, IServiceProvider services)
    {
        CallbackSecret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var o = options.Value.BuiltInSandbox;
        var settings = new SandboxOptions
        {
            LatencyMs = o.LatencyMs, InvalidAccountShare = o.InvalidAccountShare, InsufficientBalanceShare = o.InsufficientBalanceShare,
            TimeoutShare = o.TimeoutShare, ServerErrorShare = o.ServerErrorShare, TimeoutHangMs = o.TimeoutHangMs,
            CallbackAttemptsMax = o.CallbackAttemptsMax, Seed = o.Seed, CallbackSecret = CallbackSecret,
        };
        Time = time;
        Provider = new SandboxProvider(settings, time, async (body, signature, ct) =>
            (await services.GetRequiredService<PayoutCallbacks>().HandleAsync(body, signature, ct)).Status == 200);
    }

    public SandboxProvider Provider { get; }

    public TimeProvider Time { get; }

    internal string CallbackSecret { get; }

    public void Dispose() => Provider.Stop();
}
