using Microsoft.Extensions.DependencyInjection;
using Neraca.Hosting;
using Neraca.Storage;

namespace Neraca.Tests.Infrastructure;

/// <summary>Every migration the host applies, gathered the way the host gathers them (each capability's
/// <c>AddMigrations</c>), so tests that migrate by hand see a new capability's migrations without a list to update.</summary>
public static class TestMigrations
{
    static readonly Lazy<System.Reflection.Assembly[]> Assemblies = new(() =>
    {
        var app = NeracaApp.Create(["--database", "sqlite:" + Path.Combine(Path.GetTempPath(), "neraca-test-unused.db")]);
        return app.Services.GetServices<MigrationAssembly>().Select(m => m.Assembly).ToArray();
    });

    public static IReadOnlyList<Migration> All(StoreKind kind) => MigrationRunner.Embedded(kind, Assemblies.Value);
}
