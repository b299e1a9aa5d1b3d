using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Neraca.Hosting;

/// <summary>Graceful removal from a load balancer: when the host starts stopping (SIGTERM), readiness turns unhealthy
/// and the server keeps serving for <see cref="NeracaOptions.ShutdownDrainSeconds"/> so that the balancer's health
/// checks (or Kubernetes' endpoint removal) take it out of rotation; only then does Kestrel stop accepting connections
/// and finish the requests in flight.</summary>
public sealed class ShutdownDrain(IOptions<NeracaOptions> options, TimeProvider clock) : IHostedLifecycleService, IHealthCheck
{
    volatile bool _draining;

    public bool IsDraining => _draining;

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        _draining = true;
        var seconds = options.Value.ShutdownDrainSeconds;
        if (seconds == 0) return;
        try { await Task.Delay(TimeSpan.FromSeconds(seconds), clock, cancellationToken); }
        catch (OperationCanceledException) { } // the shutdown timeout ran out: stop now
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct = default) =>
        Task.FromResult(_draining ? HealthCheckResult.Unhealthy("shutting down") : HealthCheckResult.Healthy());

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
