namespace Neraca.Hosting;

/// <summary>Endpoint metadata: a successful response of this endpoint carries a secret in the named top-level JSON
/// fields (an API key, tokens, a webhook secret). Such responses get <c>Cache-Control: no-store</c> (RFC 6749 §5.1),
/// and the Idempotency-Key store keeps them only with those fields removed and does not replay them
/// (409 <c>idempotent_replay_unavailable</c>): a secret is never persisted in clear.</summary>
public sealed class SecretResponse(params string[] fields)
{
    public IReadOnlyList<string> Fields { get; } = fields;
}

public static class SecretResponseExtensions
{
    /// <summary>Marks the endpoint's successful responses as carrying secrets in <paramref name="fields"/>.</summary>
    public static RouteHandlerBuilder WithSecretResponse(this RouteHandlerBuilder builder, params string[] fields) =>
        builder.WithMetadata(new SecretResponse(fields));
}
