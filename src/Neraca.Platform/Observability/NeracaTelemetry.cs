using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Neraca.Observability;

/// <summary>Names shared by every capability's telemetry. Instruments live with the code they measure, all on a
/// <see cref="Meter"/> named <see cref="Name"/>; spans on an <see cref="ActivitySource"/> of the same name. Both
/// are exported by <see cref="ObservabilityModule"/>.</summary>
/// <remarks>Prometheus names are derived deterministically (OpenTelemetry's underscore escaping with suffixes):
/// dots become underscores, a unit <c>s</c> appends <c>_seconds</c>, counters end in <c>_total</c>, units in braces
/// (<c>{transfer}</c>) add nothing. <c>neraca.posting.commit.duration</c> (histogram, s) is scraped as
/// <c>neraca_posting_commit_duration_seconds_bucket</c>; <c>neraca.transfers.posted</c> (counter) as
/// <c>neraca_transfers_posted_total</c>. Use unit <c>s</c> for durations and no unit (or one in braces) for counts.</remarks>
public static class NeracaTelemetry
{
    /// <summary>Name of Neraca's Meter and ActivitySource.</summary>
    public const string Name = "Neraca";

    /// <summary>Span tag: the authenticated tenant (from the <c>neraca:tenant</c> claim).</summary>
    public const string TenantIdTag = "neraca.tenant_id";

    /// <summary>Span tag: the request id echoed in <c>X-Request-Id</c> (set by ServiceDefaults).</summary>
    public const string RequestIdTag = "neraca.request_id";

    /// <summary>Neraca's own spans (a span per posting batch, linked to the request spans it carried).</summary>
    public static readonly ActivitySource ActivitySource = new(Name);

    /// <summary>Neraca's own instruments.</summary>
    public static readonly Meter Meter = new(Name);
}
