using Microsoft.Extensions.Logging;

namespace Neraca.Tests.Observability;

/// <summary>Keeps every log entry a server writes, with its structured state and its scopes (where request ids and
/// trace ids live), the way the JSON console formatter sees them.</summary>
public sealed class CapturingLoggerProvider : ILoggerProvider, ISupportExternalScope
{
    readonly List<CapturedLog> _entries = [];
    IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();

    public IReadOnlyList<CapturedLog> Entries
    {
        get { lock (_entries) return [.. _entries]; }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose()
    {
    }

    sealed class Logger(CapturingLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => provider._scopes.Push(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var fields = new Dictionary<string, string?>(StringComparer.Ordinal);
            Collect(state, fields);
            provider._scopes.ForEachScope((scope, f) => Collect(scope, f), fields);
            lock (provider._entries) provider._entries.Add(new CapturedLog(category, logLevel, formatter(state, exception), fields));
        }

        static void Collect(object? state, Dictionary<string, string?> fields)
        {
            if (state is IEnumerable<KeyValuePair<string, object?>> pairs)
                foreach (var (key, value) in pairs) fields.TryAdd(key, value?.ToString());
            else if (state is IEnumerable<KeyValuePair<string, object>> objects)
                foreach (var (key, value) in objects) fields.TryAdd(key, value?.ToString());
        }
    }
}

public sealed record CapturedLog(string Category, LogLevel Level, string Message, IReadOnlyDictionary<string, string?> Fields);
