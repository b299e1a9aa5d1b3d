using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Neraca.Tests.Infrastructure;

/// <summary>Replaces services of an application that <c>NeracaApp.Create</c> builds, without a test hook in the
/// server: the generic host announces every host it builds on the <c>Microsoft.Extensions.Hosting</c> diagnostic
/// listener ("HostBuilding", the seam WebApplicationFactory uses), and the overrides apply to hosts built in the
/// async flow that called <see cref="Apply"/> only, so test classes building servers in parallel do not see each
/// other's.</summary>
public static class ServiceOverrides
{
    static readonly AsyncLocal<Action<IServiceCollection>?> Current = new();
    static int _subscribed;

    /// <summary>Hosts built until the returned scope is disposed (in this async flow) get <paramref name="configure"/>
    /// applied after the application's own registrations.</summary>
    public static IDisposable Apply(Action<IServiceCollection> configure)
    {
        if (Interlocked.Exchange(ref _subscribed, 1) == 0) DiagnosticListener.AllListeners.Subscribe(new AllListenersObserver());
        var previous = Current.Value;
        Current.Value = configure;
        return new Scope(previous);
    }

    /// <summary>A server whose clock is <paramref name="time"/> (e.g. a <c>FakeTimeProvider</c>).</summary>
    public static IDisposable Clock(TimeProvider time) => Apply(s =>
    {
        s.RemoveAll<TimeProvider>();
        s.AddSingleton(time);
    });

    static void RemoveAll<T>(this IServiceCollection services)
    {
        for (var i = services.Count - 1; i >= 0; i--)
            if (services[i].ServiceType == typeof(T)) services.RemoveAt(i);
    }

    sealed class Scope(Action<IServiceCollection>? previous) : IDisposable
    {
        public void Dispose() => Current.Value = previous;
    }

    sealed class AllListenersObserver : IObserver<DiagnosticListener>
    {
        public void OnNext(DiagnosticListener listener)
        {
            if (listener.Name == "Microsoft.Extensions.Hosting") listener.Subscribe(new HostingObserver());
        }

        public void OnCompleted() { }
        public void OnError(Exception error) { }
    }

    sealed class HostingObserver : IObserver<KeyValuePair<string, object?>>
    {
        public void OnNext(KeyValuePair<string, object?> e)
        {
            if (e.Key != "HostBuilding" || Current.Value is not { } configure) return;
            switch (e.Value)
            {
                case IHostBuilder host: host.ConfigureServices((_, services) => configure(services)); break;
                case IHostApplicationBuilder app: configure(app.Services); break;
            }
        }

        public void OnCompleted() { }
        public void OnError(Exception error) { }
    }
}
