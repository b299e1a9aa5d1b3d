using Microsoft.Extensions.Options;

namespace Neraca.Hosting;

/// <summary>Checks every setting before a command touches the database: a bad one stops start-up (exit code 2) with
/// the database exactly as it was.</summary>
public static class SettingsCheck
{
    /// <summary>Validates every options type registered with <c>ValidateOnStart</c> (what the host would otherwise
    /// do only when it starts, after migrations); all failures are reported together.</summary>
    /// <exception cref="OptionsValidationException">One or more settings are invalid.</exception>
    public static void ValidateAll(IServiceProvider services)
    {
        try
        {
            if (services.GetService<IStartupValidator>() is { } validator) validator.Validate();
            else _ = services.GetRequiredService<IOptions<NeracaOptions>>().Value;
        }
        catch (AggregateException e) when (e.InnerExceptions.All(i => i is OptionsValidationException))
        {
            var failures = e.InnerExceptions.Cast<OptionsValidationException>().ToList();
            throw new OptionsValidationException(failures[0].OptionsName, failures[0].OptionsType, [.. failures.SelectMany(f => f.Failures)]);
        }
    }

    /// <summary>A value the configuration binder could not convert (<c>NERACA_JOBS__LEASE_SECONDS=soon</c>).</summary>
    public static bool IsBindingFailure(InvalidOperationException e) =>
        e.InnerException is not null && e.Message.Contains("configuration value", StringComparison.OrdinalIgnoreCase);
}
