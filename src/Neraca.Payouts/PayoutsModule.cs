namespace Neraca.Payouts;

/// <summary>Payouts (issue #13): HTTP at <c>/v1/payouts</c>, the in-process <c>PayoutService</c> for products, the saga
/// jobs, the provider adapter and the sandbox provider.</summary>
public static class PayoutsModule
{
    public static WebApplicationBuilder AddPayouts(this WebApplicationBuilder builder) => builder;

    public static WebApplication MapPayouts(this WebApplication app) => app;
}
