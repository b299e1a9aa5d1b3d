using System.Reflection;
using System.Text.RegularExpressions;
using NetArchTest.Rules;
using Neraca.Ledger;

namespace Neraca.Tests.Architecture;

/// <summary>The one way money moves: products call <see cref="ILedger"/> (Neraca.Ledger.Contracts) and never the
/// ledger's implementation, storage internals, another product, or the ledger's tables (docs/architecture.md). Payouts
/// is held to the same rules, and is the one capability products may call besides the ledger (its public API).</summary>
public sealed partial class ModuleBoundaryTests
{
    static readonly Assembly LedgerImplementation = typeof(LedgerModule).Assembly;
    static readonly Assembly LedgerContracts = typeof(ILedger).Assembly;

    static readonly Assembly[] Products =
    [
        typeof(Wellness.WellnessModule).Assembly,
        typeof(SplitBill.SplitBillModule).Assembly,
        typeof(global::Neraca.Banking.BankingModule).Assembly,
        typeof(Settlement.SettlementModule).Assembly,
        typeof(Payouts.PayoutsModule).Assembly,
    ];

    /// <summary>Shared by the products like the ledger: its public types are an API, its internals stay internal.</summary>
    static readonly string SharedPayouts = typeof(Payouts.PayoutsModule).Assembly.GetName().Name!;

    public static TheoryData<string> ProductNames => [.. Products.Select(p => p.GetName().Name!)];

    /// <summary>Internals the platform keeps for the host: a product registers migrations, it does not run them.</summary>
    static readonly string[] StorageInternals = ["Neraca.Storage.MigrationRunner", "Neraca.Storage.StorageStartup"];

    /// <summary>Tables only the ledger project may name in SQL.</summary>
    static readonly string[] LedgerTables =
        ["ledgers", "ledger_heads", "accounts", "transfers", "transfer_resolutions", "entries", "entries_v1", "chain_links", "open_pendings", "audit_checkpoints"];

    /// <summary>Migrations applied before the split are checksummed and cannot move: 0300 created the ledger's
    /// <c>audit_checkpoints</c> beside the job tables.</summary>
    static readonly HashSet<string> FrozenMigrations =
        ["Neraca.Platform/Jobs/Migrations/postgres/0300_jobs.sql", "Neraca.Platform/Jobs/Migrations/sqlite/0300_jobs.sql"];

    static Assembly Product(string name) => Products.Single(p => p.GetName().Name == name);

    /// <summary>Full names of the ledger implementation's types: everything in its assembly but the host's entry point
    /// (<see cref="LedgerModule"/>). None is a name prefix of a contract type (NetArchTest matches by prefix).</summary>
    static string[] LedgerImplementationTypes() =>
        [.. LedgerImplementation.GetTypes()
            .Where(t => t != typeof(LedgerModule) && t.FullName is not null && !t.FullName.Contains('<', StringComparison.Ordinal) && !t.IsNested)
            .Select(t => t.FullName!)];

    static string[] ViolationsOf(Types types, string[] forbidden) => Failing(types.ShouldNot().HaveDependencyOnAny(forbidden).GetResult());

    static string[] ViolationsOf(PredicateList types, string[] forbidden) => Failing(types.ShouldNot().HaveDependencyOnAny(forbidden).GetResult());

    static string[] Failing(NetArchTest.Rules.TestResult result) => result.IsSuccessful ? [] : [.. result.FailingTypeNames ?? []];

    [Theory]
    [MemberData(nameof(ProductNames))]
    public void Product_references_only_the_platform_the_ledger_contracts_and_payouts(string product)
    {
        var references = Product(product).GetReferencedAssemblies().Select(a => a.Name!).Where(n => n.StartsWith("Neraca", StringComparison.Ordinal));
        Assert.Empty(references.Except(["Neraca.Platform", LedgerContracts.GetName().Name!, SharedPayouts]));
    }

    [Theory]
    [MemberData(nameof(ProductNames))]
    public void Product_types_do_not_use_ledger_implementation_storage_internals_or_other_products(string product)
    {
        var otherProducts = Products.Select(p => p.GetName().Name!).Where(n => n != product && n != SharedPayouts);
        string[] forbidden = [.. LedgerImplementationTypes(), .. StorageInternals, .. otherProducts];
        Assert.Empty(ViolationsOf(Types.InAssembly(Product(product)), forbidden));
    }

    [Fact]
    public void No_contract_type_name_starts_with_an_implementation_type_name()
    {
        // NetArchTest matches dependencies by name prefix: an implementation type named like the start of a contract
        // type would make every product that uses the contract look like a violation (or hide one).
        var contracts = LedgerContracts.GetTypes().Select(t => t.FullName!).ToList();
        var prefixes = LedgerImplementationTypes().Where(i => contracts.Any(c => c.StartsWith(i, StringComparison.Ordinal))).ToList();
        Assert.True(prefixes.Count == 0, "Implementation types that prefix a contract type: " + string.Join(", ", prefixes));
    }

    [Fact]
    public void A_type_that_uses_the_ledger_store_fails_the_boundary_rule()
    {
        // The rule run on a deliberate violation in this assembly (tests see the ledger's internals): it must name it.
        var violations = ViolationsOf(Types.InAssembly(typeof(ModuleBoundaryTests).Assembly).That().HaveName(nameof(DeliberateViolation)),
            LedgerImplementationTypes());
        Assert.Equal([typeof(DeliberateViolation).FullName!], violations);
    }

    [Fact]
    public void Ledger_tables_appear_in_sql_only_inside_the_ledger_project()
    {
        var src = Path.Combine(RepositoryRoot(), "src");
        var offenders = new List<string>();
        var scanned = 0;
        foreach (var file in Directory.EnumerateFiles(src, "*.*", SearchOption.AllDirectories))
        {
            if (!(file.EndsWith(".cs", StringComparison.Ordinal) || file.EndsWith(".sql", StringComparison.Ordinal))) continue;
            var relative = Path.GetRelativePath(src, file).Replace('\\', '/');
            if (relative.Contains("/obj/", StringComparison.Ordinal) || relative.Contains("/bin/", StringComparison.Ordinal)) continue;
            scanned++;
            if (relative.StartsWith("Neraca.Ledger/", StringComparison.Ordinal) || FrozenMigrations.Contains(relative)) continue;
            foreach (var hit in LedgerTableUses(File.ReadAllText(file))) offenders.Add($"{relative}: {hit}");
        }
        Assert.True(scanned > 100, $"Only {scanned} source files found under {src}.");
        Assert.Empty(offenders);
    }

    [Fact]
    public void The_sql_scan_flags_a_query_on_the_transfers_table()
    {
        Assert.Equal(["FROM transfers"], LedgerTableUses("const string sql = \"SELECT amount FROM transfers WHERE id = @id\";"));
        Assert.Equal(["JOIN accounts", "UPDATE entries_v1"], LedgerTableUses("SELECT 1 FROM x JOIN accounts a ON true; UPDATE entries_v1 SET n = 1"));
        Assert.Empty(LedgerTableUses("SELECT id FROM transfers_of_mine; -- another table"));
    }

    static List<string> LedgerTableUses(string text) =>
        [.. SqlTableUse().Matches(text).Select(m => m.Value).Where(v => LedgerTables.Contains(v.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1]))];

    [GeneratedRegex(@"\b(FROM|JOIN|INTO|UPDATE|TABLE|TRUNCATE)\s+[a-z_0-9]+\b(?![a-z_0-9])", RegexOptions.IgnoreCase)]
    private static partial Regex SqlTableUse();

    static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Neraca.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Neraca.slnx not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>Breaks the rule on purpose: the boundary test must catch it.</summary>
internal sealed class DeliberateViolation(LedgerStore store)
{
    public LedgerStore Store { get; } = store;
}
