using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Neraca.Observability;
using Neraca.Storage;
using Scalar.AspNetCore;

namespace Neraca.Hosting;

/// <summary>Host concerns every role shares: options, JSON, problem+json, logging, request ids, health, OpenAPI.</summary>
public static class ServiceDefaults
{
    public const string RequestIdHeader = "X-Request-Id";
    const int RequestIdLengthMax = 128;

    /// <summary>The JSON contract: snake_case, strict (unknown fields, trailing commas, duplicate fields and fields
    /// spelled in another case are errors). Duplicates and case variants are refused because a gateway or signer that
    /// reads the first <c>amount</c> would approve another amount than the one posted (last one wins otherwise).</summary>
    public static void ConfigureJson(JsonSerializerOptions o)
    {
        o.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        o.PropertyNameCaseInsensitive = false;
        o.AllowDuplicateProperties = false;
        o.DictionaryKeyPolicy = null;
        o.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        o.AllowTrailingCommas = false;
        o.ReadCommentHandling = JsonCommentHandling.Disallow;
        o.NumberHandling = JsonNumberHandling.Strict;
        o.RespectNullableAnnotations = true;
        o.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false));
        o.Converters.Add(new StrictJsonObjectConverter());
    }

    /// <summary>Free-form objects (metadata) with a duplicate key are a 400 like any other duplicate field: the
    /// framework's <see cref="JsonObject"/> converter ignores <see cref="JsonSerializerOptions.AllowDuplicateProperties"/>.</summary>
    sealed class StrictJsonObjectConverter : JsonConverter<JsonObject>
    {
        public override JsonObject? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            RefuseDuplicates(reader); // a copy: the scan does not move the reader
            return JsonNode.Parse(ref reader) as JsonObject ?? throw new JsonException("The JSON value could not be converted: expected an object.");
        }

        public override void Write(Utf8JsonWriter writer, JsonObject value, JsonSerializerOptions options) => value.WriteTo(writer, options);

        /// <summary>One pass over the (fully buffered) value with a set of names per open object; no recursion.</summary>
        static void RefuseDuplicates(Utf8JsonReader scan)
        {
            var open = new Stack<HashSet<string>?>();
            do
            {
                switch (scan.TokenType)
                {
                    case JsonTokenType.StartObject:
                        open.Push(new HashSet<string>(StringComparer.Ordinal));
                        break;
                    case JsonTokenType.StartArray:
                        open.Push(null);
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        open.Pop();
                        break;
                    case JsonTokenType.PropertyName:
                        var name = scan.GetString()!;
                        if (open.Peek() is { } names && !names.Add(name))
                            throw new JsonException($"Duplicate property '{name}' encountered during deserialization.");
                        break;
                }
            }
            while (open.Count > 0 && scan.Read());
        }
    }

    public static WebApplicationBuilder AddServiceDefaults(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<NeracaOptions>()
            .Bind(builder.Configuration)
            .ValidateDataAnnotations()
            .Validate(o => NeracaRolesParser.TryParse(o.Role, out _), "Role must be a comma-separated list of api, worker, scheduler.")
            // Checked here and not only when the key is stored, so that a bad key stops start-up before migrations run.
            .Validate(o => string.IsNullOrEmpty(o.BootstrapApiKey) || Tenancy.ApiKey.IsWellFormed(o.BootstrapApiKey),
                "BootstrapApiKey must look like nrc_ followed by letters and digits (13-200 characters).")
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<NeracaOptions>, DatabaseSettingValidator>();

        var options = builder.Configuration.Get<NeracaOptions>() ?? new NeracaOptions();
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(options.ShutdownTimeoutSeconds));
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            k.AddServerHeader = false;
        });

        builder.Logging.ClearProviders();
        // Defaults for noisy framework categories; Logging:LogLevel:<category> in configuration overrides each.
        foreach (var (category, level) in new[] { ("Microsoft.AspNetCore", LogLevel.Warning),
                     ("Microsoft.AspNetCore.DataProtection", LogLevel.Error), ("Microsoft.Hosting.Lifetime", LogLevel.Information) })
            if (builder.Configuration[$"Logging:LogLevel:{category}"] is null) builder.Logging.AddFilter(category, level);
        builder.Logging.AddJsonConsole(o =>
        {
            o.IncludeScopes = true;
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
        });

        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.ConfigureHttpJsonOptions(o => ConfigureJson(o.SerializerOptions));
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = ctx =>
        {
            var problem = ctx.ProblemDetails;
            var status = problem.Status ?? ctx.HttpContext.Response.StatusCode;
            if (!problem.Extensions.ContainsKey("code"))
            {
                var code = Problems.CodeForStatus(status);
                problem.Extensions["code"] = code;
                problem.Type = Problems.TypeFor(code);
            }
            problem.Extensions.Remove("traceId");
            problem.Extensions["request_id"] = ctx.HttpContext.TraceIdentifier;
            if (Activity.Current is { } activity) problem.Extensions["trace_id"] = activity.TraceId.ToString();
        });
        builder.Services.AddExceptionHandler<ProblemExceptionHandler>();
        builder.Services.AddOpenApi(o => o.AddOperationTransformer(DocumentScopes));
        builder.Services.AddSingleton<ShutdownDrain>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ShutdownDrain>());
        builder.Services.AddHealthChecks().AddCheck<DatabaseHealthCheck>("database", tags: ["ready"])
            .AddCheck<ShutdownDrain>("shutdown", tags: ["ready"]);
        return builder;
    }

    /// <summary>Writes on each operation of the OpenAPI document what its caller needs: <c>x-neraca-scopes</c> (every scope
    /// policy on the endpoint and its groups; <c>admin</c> holds them all) or <c>x-neraca-anonymous</c>. Clients read it;
    /// the tests check every operation against it.</summary>
    static Task DocumentScopes(Microsoft.OpenApi.OpenApiOperation operation, Microsoft.AspNetCore.OpenApi.OpenApiOperationTransformerContext context,
        CancellationToken ct)
    {
        var metadata = context.Description.ActionDescriptor.EndpointMetadata;
        operation.Extensions ??= new Dictionary<string, Microsoft.OpenApi.IOpenApiExtension>();
        if (metadata.OfType<Microsoft.AspNetCore.Authorization.IAllowAnonymous>().Any())
        {
            operation.Extensions["x-neraca-anonymous"] = new Microsoft.OpenApi.JsonNodeExtension(JsonValue.Create(true));
            return Task.CompletedTask;
        }
        var scopes = metadata.OfType<Microsoft.AspNetCore.Authorization.IAuthorizeData>().Select(a => a.Policy)
            .Where(p => p is not null && Neraca.Tenancy.Scopes.All.Contains(p)).Distinct().Order(StringComparer.Ordinal).ToArray();
        if (scopes.Length > 0)
            operation.Extensions["x-neraca-scopes"] = new Microsoft.OpenApi.JsonNodeExtension(new JsonArray([.. scopes.Select(x => (JsonNode?)JsonValue.Create(x))]));
        return Task.CompletedTask;
    }

    public static WebApplication UseServiceDefaults(this WebApplication app)
    {
        app.Use(RequestIdAsync);
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.MapOpenApi().AllowAnonymous();
        app.MapScalarApiReference("/docs", o => o.WithTitle("Neraca API").WithOpenApiRoutePattern("/openapi/{documentName}.json")).AllowAnonymous();
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteHealthAsync })
            .WithMetadata(new HttpMethodMetadata(["GET", "HEAD"])).AllowAnonymous();
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready"), ResponseWriter = WriteHealthAsync })
            .WithMetadata(new HttpMethodMetadata(["GET", "HEAD"])).AllowAnonymous();
        return app;
    }

    /// <summary>Accepts a caller's <c>X-Request-Id</c> when it is short and plain, otherwise makes one; echoes it and
    /// puts it on every log line of the request.</summary>
    static async Task RequestIdAsync(HttpContext context, RequestDelegate next)
    {
        var given = context.Request.Headers[RequestIdHeader].ToString();
        var id = IsAcceptableRequestId(given) ? given : "req_" + Ids.NewUlid();
        context.TraceIdentifier = id;
        context.Response.Headers[RequestIdHeader] = id;
        // The exception handler clears the response headers before writing a 500; put the id back when it starts.
        context.Response.OnStarting(() =>
        {
            var headers = context.Response.Headers;
            headers[RequestIdHeader] = id;
            // Every response: browsers must not guess a type (a JSON body rendered as HTML). Responses that carry a
            // secret: no cache anywhere may keep them (RFC 6749 section 5.1).
            headers.XContentTypeOptions = "nosniff";
            if (context.Response.StatusCode < 300 && context.GetEndpoint()?.Metadata.GetMetadata<SecretResponse>() is not null)
            {
                headers.CacheControl = "no-store";
                headers.Pragma = "no-cache";
            }
            return Task.CompletedTask;
        });
        Activity.Current?.SetTag(NeracaTelemetry.RequestIdTag, id);
        var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Neraca.Http");
        using (logger.BeginScope(new Dictionary<string, object> { ["request_id"] = id }))
            await next(context);
    }

    static bool IsAcceptableRequestId(string id) =>
        id.Length is > 0 and <= RequestIdLengthMax && id.AsSpan().IndexOfAnyExceptInRange('!', '~') < 0;

    static Task WriteHealthAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsJsonAsync(new
        {
            status = report.Status.ToString().ToLowerInvariant(),
            checks = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString().ToLowerInvariant(), description = e.Value.Description }),
        });
    }

    internal static string? DatabaseSettingError(NeracaOptions o)
    {
        try
        {
            var setting = Database.SettingOrFile(o.Database, o.DatabaseFile, nameof(o.Database));
            var read = Database.SettingOrFile(o.ReadDatabase, o.ReadDatabaseFile, nameof(o.ReadDatabase));
            if (!string.IsNullOrWhiteSpace(setting) && !setting.Trim().StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase))
                Database.ToNpgsqlConnectionString(setting.Trim(), "Database");
            if (!string.IsNullOrWhiteSpace(read))
                Database.ToNpgsqlConnectionString(read.Trim(), "ReadDatabase");
            return null;
        }
        catch (ArgumentException e)
        {
            return e.Message;
        }
    }

    sealed class DatabaseSettingValidator : IValidateOptions<NeracaOptions>
    {
        public ValidateOptionsResult Validate(string? name, NeracaOptions options) =>
            DatabaseSettingError(options) is { } error ? ValidateOptionsResult.Fail(error) : ValidateOptionsResult.Success;
    }
}

/// <summary>Readiness: the system of record answers a trivial query.</summary>
public sealed class DatabaseHealthCheck(Database database) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken ct = default)
    {
        try
        {
            await using var connection = await database.OpenAsync(ct);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT 1";
            await command.ExecuteScalarAsync(ct);
            return HealthCheckResult.Healthy(database.Kind.ToString().ToLowerInvariant());
        }
        catch (Exception e) when (e is System.Data.Common.DbException or TimeoutException or InvalidOperationException)
        {
            return HealthCheckResult.Unhealthy("database unreachable: " + e.Message);
        }
    }
}
