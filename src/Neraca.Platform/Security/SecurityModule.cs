using Neraca.Jobs;

namespace Neraca.Security;

public static class SecurityModule
{
    /// <summary>Field encryption for every capability that stores personal or bank data (one key ring, not one per
    /// product) and the daily re-encryption after a key rotation.</summary>
    public static WebApplicationBuilder AddFieldEncryption(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<EncryptionOptions>().Bind(builder.Configuration.GetSection("Encryption"))
            .Validate(o => o.InlineProblem() is null, "Encryption: the inline keys are invalid (Encryption:Keys are base64 of 32 bytes, "
                + "Encryption:ActiveKey names one of them, Encryption:LookupKey is base64 of 32+ bytes).")
            .Validate(o => string.IsNullOrWhiteSpace(o.KeysFile) || File.Exists(o.KeysFile), "Encryption:KeysFile does not exist.")
            .ValidateOnStart();
        builder.Services.AddSingleton<FieldEncryption>();
        builder.Services.AddSingleton<IJobHandler, ReencryptJob>();
        builder.Services.AddSingleton(new RecurringJob("encryption.reencrypt", ReencryptJob.TypeName, "31 2 * * *"));
        return builder;
    }

    /// <summary>Declares encrypted columns of a capability's table for <see cref="ReencryptJob"/>.</summary>
    public static IServiceCollection AddEncryptedColumns(this IServiceCollection services, EncryptedColumns columns)
    {
        columns.Validate();
        return services.AddSingleton(columns);
    }
}
