using System.Reflection;

namespace Neraca.Hosting;

/// <summary>Maps <c>NERACA_</c> environment variables to configuration keys so that every setting, including the
/// keys of dictionary settings (schedule names, job types, tenant ids, log categories), can be set from the
/// environment.</summary>
/// <remarks>
/// <para>The part after the prefix is split at <c>__</c> into sections. A section is a setting's name, written in any
/// case with or without single underscores between its words (<c>BATCH_OPERATIONS_MAX</c>, <c>BatchOperationsMax</c>):
/// its underscores are dropped, since no setting name has one, and keys match case-insensitively. A section that
/// follows a dictionary setting (<c>Jobs:Recurring</c>, <c>Jobs:Types</c>, <c>RateLimits:Tenants</c>,
/// <c>Logging:LogLevel</c>) is that dictionary's key and is taken literally, underscores and case included:
/// <c>NERACA_JOBS__RECURRING__ledger.expire_pending__CRON</c> → <c>Jobs:Recurring:ledger.expire_pending:Cron</c>.</para>
/// <para>Dictionary settings are found by reflection over the options types of this assembly (public properties of
/// type <c>Dictionary&lt;string, T&gt;</c> on types named <c>*Options</c>), so a new dictionary setting needs no
/// change here.</para>
/// </remarks>
public static class EnvironmentSettings
{
    public const string Prefix = "NERACA_";

    /// <summary>Names of the settings whose children are dictionary keys, compared case-insensitively after dropping
    /// underscores.</summary>
    public static IReadOnlySet<string> DictionarySettings { get; } = FindDictionarySettings();

    /// <summary>The configuration key for a <c>NERACA_</c> variable, or null for any other variable.</summary>
    public static string? ToConfigurationKey(string variable)
    {
        if (!variable.StartsWith(Prefix, StringComparison.Ordinal) || variable.Length == Prefix.Length) return null;
        var sections = variable[Prefix.Length..].Split("__");
        var previousIsDictionary = false;
        for (var i = 0; i < sections.Length; i++)
        {
            if (previousIsDictionary)
            {
                previousIsDictionary = false; // a key, kept as written; what follows it is a setting name again
                continue;
            }
            sections[i] = sections[i].Replace("_", "", StringComparison.Ordinal);
            previousIsDictionary = DictionarySettings.Contains(sections[i]);
        }
        return string.Join(':', sections);
    }

    /// <summary>Settings whose value is itself a path (<c>DatabaseFile</c>, <c>KeysFile</c>): their <c>_FILE</c> variable
    /// sets them and is not read as a file indirection.</summary>
    public static IReadOnlySet<string> FileSettings { get; } = FindFileSettings();

    /// <summary>For <c>NERACA_X_FILE</c> (a mounted secret): the configuration key of <c>X</c>, whose value is the
    /// file's content; null for any other variable and for settings that are paths themselves
    /// (<c>NERACA_DATABASE_FILE</c> is the <c>DatabaseFile</c> setting, whose file is re-read for rotated passwords).</summary>
    public static string? ToFileConfigurationKey(string variable)
    {
        const string suffix = "_FILE";
        if (!variable.EndsWith(suffix, StringComparison.Ordinal) || variable.EndsWith("_" + suffix, StringComparison.Ordinal)) return null;
        var whole = ToConfigurationKey(variable);
        if (whole is null || FileSettings.Contains(whole.Split(':')[^1])) return null;
        return ToConfigurationKey(variable[..^suffix.Length]);
    }

    /// <summary>The host and every Neraca module it references (options classes live with their capability).</summary>
    static IEnumerable<Assembly> NeracaAssemblies()
    {
        var seen = new Dictionary<string, Assembly>(StringComparer.Ordinal);
        var pending = new Stack<Assembly>([typeof(EnvironmentSettings).Assembly]);
        while (pending.TryPop(out var assembly))
        {
            if (!seen.TryAdd(assembly.GetName().Name!, assembly)) continue;
            foreach (var reference in assembly.GetReferencedAssemblies())
                if (reference.Name!.StartsWith("Neraca.", StringComparison.Ordinal) && !seen.ContainsKey(reference.Name)) pending.Push(Assembly.Load(reference));
        }
        return seen.Values;
    }

    static HashSet<string> FindFileSettings() =>
        NeracaAssemblies().SelectMany(a => a.GetTypes()).Where(t => t.Name.EndsWith("Options", StringComparison.Ordinal))
            .SelectMany(t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance)).Select(p => p.Name)
            .Where(n => n.EndsWith("File", StringComparison.Ordinal)).ToHashSet(StringComparer.OrdinalIgnoreCase);

    static HashSet<string> FindDictionarySettings()
    {
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "LogLevel" }; // Logging:LogLevel:<category>
        foreach (var type in NeracaAssemblies().SelectMany(a => a.GetTypes()))
        {
            if (!type.Name.EndsWith("Options", StringComparison.Ordinal)) continue;
            foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                var t = property.PropertyType;
                if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(Dictionary<,>) && t.GetGenericArguments()[0] == typeof(string))
                    names.Add(property.Name);
            }
        }
        return names;
    }
}
