using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Neraca.Events;

/// <summary>Webhook signatures. Each delivery carries
/// <c>Neraca-Signature: t=TIMESTAMP,v1=HEX</c> where TIMESTAMP is Unix seconds and HEX is
/// <c>HMAC-SHA256(key = UTF-8 bytes of the endpoint secret, message = TIMESTAMP + "." + raw body)</c> in lower-case hex.
/// Receivers recompute it over the raw body, compare in constant time, and reject timestamps outside
/// <see cref="ToleranceDefault"/> of their clock (replay window); the event id deduplicates the rest.</summary>
public static class WebhookSignature
{
    public const string Header = "Neraca-Signature";
    public const string EventIdHeader = "Neraca-Event-Id";
    public const string EventTypeHeader = "Neraca-Event-Type";
    public const string DeliveryIdHeader = "Neraca-Delivery-Id";
    public const string SecretPrefix = "whsec_";
    public static readonly TimeSpan ToleranceDefault = TimeSpan.FromMinutes(5);
    public static string NewSecret() => Tenancy.SecretToken.New(SecretPrefix, 40);

    public static string Compute(string secret, long timestamp, ReadOnlySpan<byte> body)
    {
        var prefix = Encoding.UTF8.GetBytes(timestamp.ToString(CultureInfo.InvariantCulture) + ".");
        var message = new byte[prefix.Length + body.Length];
        prefix.CopyTo(message, 0);
        body.CopyTo(message.AsSpan(prefix.Length));
        return Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), message));
    }

    public static string HeaderValue(string secret, long timestamp, ReadOnlySpan<byte> body) =>
        string.Create(CultureInfo.InvariantCulture, $"t={timestamp},v1={Compute(secret, timestamp, body)}");

    /// <summary>What a receiver does: true when the header is well-formed, fresh within <paramref name="tolerance"/>,
    /// and one of its <c>v1</c> signatures matches the body.</summary>
    public static bool Verify(string secret, string? header, ReadOnlySpan<byte> body, DateTimeOffset now, TimeSpan tolerance)
    {
        if (string.IsNullOrEmpty(header)) return false;
        long? timestamp = null;
        var signatures = new List<string>();
        foreach (var part in header.Split(',', StringSplitOptions.TrimEntries))
        {
            if (part.StartsWith("t=", StringComparison.Ordinal) && long.TryParse(part.AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out var t))
                timestamp = t;
            else if (part.StartsWith("v1=", StringComparison.Ordinal))
                signatures.Add(part[3..]);
        }
        if (timestamp is null || Math.Abs(now.ToUnixTimeSeconds() - timestamp.Value) > tolerance.TotalSeconds) return false;
        var expected = Encoding.ASCII.GetBytes(Compute(secret, timestamp.Value, body));
        return signatures.Any(s => CryptographicOperations.FixedTimeEquals(expected, Encoding.ASCII.GetBytes(s)));
    }
}

/// <summary>SSRF protection: webhook targets must be public addresses unless
/// <see cref="EventsOptions.AllowPrivateWebhookTargets"/> is on. Checked when an endpoint is registered and again on
/// every connection (the resolved address, so DNS rebinding cannot sneak past).</summary>
public static class WebhookTargets
{
    /// <summary>Whether an address is routable on the public internet (not loopback, private, link-local, CGNAT,
    /// unique-local, multicast, unspecified or reserved, in IPv4 or IPv6 form, including the IPv6 forms that embed an
    /// IPv4 address: IPv4-mapped, IPv4-compatible, SIIT, NAT64, 6to4 and Teredo).</summary>
    public static bool IsPublic(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (IPAddress.IsLoopback(address)) return false;
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            Span<byte> b = stackalloc byte[4];
            address.TryWriteBytes(b, out _);
            return !(b[0] is 0 or 10 or 127 or >= 224
                     || (b[0] == 100 && b[1] >= 64 && b[1] < 128)      // 100.64/10 carrier-grade NAT
                     || (b[0] == 169 && b[1] == 254)                    // link-local, cloud metadata
                     || (b[0] == 172 && b[1] >= 16 && b[1] < 32)
                     || (b[0] == 192 && b[1] == 168)
                     || (b[0] == 192 && b[1] == 0 && b[2] is 0 or 2)    // IETF protocol assignments, TEST-NET-1
                     || (b[0] == 198 && b[1] is 18 or 19)               // benchmarking
                     || (b[0] == 198 && b[1] == 51 && b[2] == 100)
                     || (b[0] == 203 && b[1] == 0 && b[2] == 113));
        }
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            Span<byte> b = stackalloc byte[16];
            address.TryWriteBytes(b, out _);
            // Only 2000::/3 is global unicast. Everything else is loopback, unspecified, IPv4-compatible (::a.b.c.d, so
            // [::127.0.0.1] is loopback), SIIT (::ffff:0:a.b.c.d), NAT64 (64:ff9b::/96, 64:ff9b:1::/48, which reach
            // private IPv4 through a translator), discard-only, unique-local, link-local, site-local or multicast.
            if ((b[0] & 0xe0) != 0x20) return false;
            if (b[0] == 0x20 && b[1] == 0x01 && b[2] < 0x02) return false;                   // 2001::/23 IETF protocol assignments, Teredo 2001::/32
            if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return false;   // 2001:db8::/32 documentation
            if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xf0) == 0) return false;             // 3fff::/20 documentation
            if (b[0] == 0x20 && b[1] == 0x02)                                                   // 6to4 2002:AABB:CCDD::/48 embeds A.B.C.D
                return IsPublic(new IPAddress(b.Slice(2, 4)));
            return true;
        }
        return false;
    }

    /// <summary>Why a URL cannot be a webhook target, or null when it can (as far as can be told before connecting).</summary>
    public static async Task<string?> ProblemWithAsync(string? url, bool allowPrivate, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(url) || url.Length > 2048 || !Uri.TryCreate(url, UriKind.Absolute, out var uri))
            return "must be an absolute http or https URL of at most 2048 characters";
        if (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp) return "must use http or https";
        if (!string.IsNullOrEmpty(uri.UserInfo)) return "must not contain credentials";
        if (!string.IsNullOrEmpty(uri.Fragment)) return "must not contain a fragment";
        if (allowPrivate) return null;
        if (IPAddress.TryParse(uri.IdnHost, out var literal))
            return IsPublic(literal) ? null : "points at a private, loopback or otherwise non-public address";
        if (uri.IsLoopback || uri.IdnHost.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase))
            return "points at a private, loopback or otherwise non-public address";
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(3));
            var addresses = await Dns.GetHostAddressesAsync(uri.IdnHost, timeout.Token);
            if (addresses.Any(a => !IsPublic(a))) return "resolves to a private, loopback or otherwise non-public address";
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            // Not resolvable now (DNS not set up yet): accepted; every connection is checked again when sending.
        }
        return null;
    }

    /// <summary>A connect callback for <see cref="SocketsHttpHandler"/> that refuses non-public addresses.</summary>
    public static Func<SocketsHttpConnectionContext, CancellationToken, ValueTask<Stream>> GuardedConnect(bool allowPrivate) =>
        async (context, ct) =>
        {
            var addresses = IPAddress.TryParse(context.DnsEndPoint.Host, out var literal)
                ? [literal]
                : await Dns.GetHostAddressesAsync(context.DnsEndPoint.Host, ct);
            var allowed = allowPrivate ? addresses : addresses.Where(IsPublic).ToArray();
            if (allowed.Length == 0)
                throw new HttpRequestException(HttpRequestError.ConnectionError,
                    $"refused to connect to {context.DnsEndPoint.Host}: not a public address (SSRF protection)");
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(allowed, context.DnsEndPoint.Port, ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        };
}
