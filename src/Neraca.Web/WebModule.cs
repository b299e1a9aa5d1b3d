using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Neraca.Auth;
using Neraca.Storage;
using Neraca.Web.Components;
using Neraca.Web.Sessions;
using Neraca.Web.Text;

namespace Neraca.Web;

/// <summary>The web app: Razor components rendered on the server at <c>/</c>, <c>/operator/...</c> (operators, API-key
/// sessions) and <c>/app/...</c> (end users), outside <c>/v1</c>, over the same in-process services the API uses, with
/// the signed-in caller's tenant and rights. Static assets are fingerprinted and cached for a year.</summary>
public static class WebModule
{
    public static WebApplicationBuilder AddWeb(this WebApplicationBuilder builder)
    {
        // From the build output (`dotnet run`) the Razor class library's wwwroot is found through the development
        // manifest in any environment; published output has the files in wwwroot and no such manifest (a no-op then).
        var manifest = AssetManifest.Find(builder.Environment.ApplicationName);
        if (File.Exists(manifest.Runtime)) builder.Configuration[WebHostDefaults.StaticWebAssetsKey] = manifest.Runtime;
        builder.WebHost.UseStaticWebAssets();
        builder.Services.AddSingleton(manifest);
        // MapStaticAssets drops every cache header when it serves the build output's manifest; the manifest's own headers
        // are right anywhere (fingerprinted: cached for a year; the rest: revalidated), since a changed file gets a new name.
        builder.Configuration["EnableStaticAssetsDevelopmentCaching"] ??= "true";
        builder.Services.AddRazorComponents();
        builder.Services.AddAntiforgery(o =>
        {
            o.Cookie.Name = "neraca_csrf";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = Microsoft.AspNetCore.Http.CookieSecurePolicy.SameAsRequest;
            o.FormFieldName = "__csrf";
        });
        // Cookies and antiforgery tokens sealed with keys every replica derives from the shared signing key.
        builder.Services.Replace(ServiceDescriptor.Singleton<IDataProtectionProvider, DerivedDataProtectionProvider>());
        builder.Services.AddTransient<IStartupFilter, SigningKeyFilter>();
        builder.Services.AddSingleton<SignInCodes>();
        builder.Services.AddScoped<WebText>();
        builder.Services.AddMigrations(typeof(WebModule).Assembly);
        WebAuth.Add(builder.Services);
        return builder;
    }

    /// <summary>Call after authentication and authorization: validates antiforgery tokens, then maps the pages.</summary>
    public static WebApplication MapWeb(this WebApplication app)
    {
        app.Use(SecurityHeadersAsync);
        app.UseAntiforgery();
        app.MapStaticAssets(app.Services.GetRequiredService<AssetManifest>().Endpoints);
        app.MapRazorComponents<App>().WithStaticAssets(app.Services.GetRequiredService<AssetManifest>().Endpoints);
        app.MapSignInCodesApi();
        app.MapPost("/language", (Delegate)((HttpContext context) => SetLanguageAsync(context, null))).DisableAntiforgery().ExcludeFromDescription();
        app.MapPost("/operator/language", (Delegate)((HttpContext context) => SetLanguageAsync(context, WebAuth.OperatorScheme))).DisableAntiforgery().ExcludeFromDescription();
        app.MapPost("/app/language", (Delegate)((HttpContext context) => SetLanguageAsync(context, WebAuth.UserScheme))).DisableAntiforgery().ExcludeFromDescription();
        // Authorized first, so the token is checked against the signed-in user it was issued to.
        app.MapPost("/operator/sign-out", async (HttpContext context) =>
        {
            await context.SignOutAsync(WebAuth.OperatorScheme);
            return Results.LocalRedirect("/operator/sign-in");
        }).RequireAuthorization(WebPolicies.Operator).WithMetadata(new RequireAntiforgeryTokenAttribute()).ExcludeFromDescription();
        app.MapPost("/app/sign-out", async (HttpContext context) =>
        {
            await WebAuth.SignOutUserAsync(context);
            return Results.LocalRedirect("/app/sign-in");
        }).RequireAuthorization(WebPolicies.User).WithMetadata(new RequireAntiforgeryTokenAttribute()).ExcludeFromDescription();
        Views.Ewa.EwaDownloads.MapEwaWeb(app);
        // Split-bill and customer views: the preview, receipt and statement-file endpoints beside their pages.
        Views.Split.SplitEndpoints.MapSplitViews(app);
        Views.Customer.CustomerEndpoints.MapCustomerViews(app);
        return app;
    }

    /// <summary><c>POST /language</c> (and under each area, where the area's session cookie is sent): keeps the choice for
    /// a year and goes back to the page. The form's antiforgery token was issued to whoever the page showed (the area's
    /// signed-in caller, or nobody on a sign-in page), so it is checked as that caller, then as nobody.</summary>
    static async Task<IResult> SetLanguageAsync(HttpContext context, string? scheme)
    {
        var antiforgery = context.RequestServices.GetRequiredService<IAntiforgery>();
        var anonymous = context.User;
        if (scheme is not null && (await context.AuthenticateAsync(scheme)).Principal is { } signedIn) context.User = signedIn;
        if (!await antiforgery.IsRequestValidAsync(context))
        {
            context.User = anonymous;
            if (!await antiforgery.IsRequestValidAsync(context))
                return Neraca.Hosting.Problems.Of(400, "antiforgery_failed", "Bad request", "The form's antiforgery token is missing or not valid: reload the page.");
        }
        var form = await context.Request.ReadFormAsync(context.RequestAborted);
        if (Languages.Parse(form["lang"]) is { } language)
            context.Response.Cookies.Append(Languages.CookieName, language.Tag(), new CookieOptions
            {
                Path = "/", HttpOnly = true, SameSite = SameSiteMode.Lax, Secure = context.Request.IsHttps, MaxAge = TimeSpan.FromDays(365),
                IsEssential = true,
            });
        // Local paths only: never an open redirect.
        var returnPath = form["return"].ToString();
        var target = returnPath is { Length: > 0 } r && r[0] == '/' && (r.Length == 1 || (r[1] != '/' && r[1] != '\\')) ? r : "/";
        return Results.LocalRedirect(target);
    }

    /// <summary>Pages allow only their own origin: no inline script, no third party, no framing.</summary>
    static Task SecurityHeadersAsync(HttpContext context, RequestDelegate next)
    {
        var path = context.Request.Path;
        if (path.StartsWithSegments("/_content"))
        {
            // Fingerprinted assets may be kept by shared caches (a CDN) too, also for requests that carry cookies.
            context.Response.OnStarting(static state =>
            {
                var response = (HttpResponse)state;
                if (response.Headers.CacheControl.ToString().Contains("immutable", StringComparison.Ordinal))
                    response.Headers.CacheControl = "public, max-age=31536000, immutable";
                return Task.CompletedTask;
            }, context.Response);
            return next(context);
        }
        if (IsWebPath(path))
        {
            var headers = context.Response.Headers;
            headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                + "form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'";
            headers["Referrer-Policy"] = "no-referrer";
            headers.XFrameOptions = "DENY";
        }
        return next(context);
    }

    static bool IsWebPath(PathString path) =>
        path == "/" || path.StartsWithSegments("/operator") || path.StartsWithSegments("/app") || path.StartsWithSegments("/language");

    /// <summary>Where the static web assets manifests are: the application's own (<c>Neraca.Server.staticwebassets.*.json</c>
    /// beside the binary, from a build or a publish), or the host project's copied beside a process that hosts the server
    /// under another name (the test runner).</summary>
    public sealed record AssetManifest(string Endpoints, string Runtime)
    {
        const string HostName = "Neraca.Server";

        public static AssetManifest Find(string applicationName)
        {
            foreach (var name in new[] { applicationName, HostName })
            {
                var root = Path.Combine(AppContext.BaseDirectory, name);
                if (File.Exists(root + ".staticwebassets.endpoints.json"))
                    return new AssetManifest(root + ".staticwebassets.endpoints.json", root + ".staticwebassets.runtime.json");
            }
            var fallback = Path.Combine(AppContext.BaseDirectory, applicationName);
            return new AssetManifest(fallback + ".staticwebassets.endpoints.json", fallback + ".staticwebassets.runtime.json");
        }
    }

    /// <summary>Loads the shared signing key before anything in the request can need a protector (which are synchronous).</summary>
    sealed class SigningKeyFilter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (context, nextMiddleware) =>
            {
                // Only the web app's own paths: health probes and the API never wait for the database here.
                if (IsWebPath(context.Request.Path))
                    await context.RequestServices.GetRequiredService<SigningKeys>().GetAsync(context.RequestAborted);
                await nextMiddleware(context);
            });
            next(app);
        };
    }
}
