using System.Text.Json;
using Dapper;
using Neraca.Jobs;
using SkiaSharp;

namespace Neraca.SplitBill;

// Receipts: the upload is stored and answered at once; a job decodes it (the bytes decide, not the name or the media
// type), re-encodes it (which drops EXIF and every other metadata, after applying the orientation) and makes a thumbnail.
public sealed partial class SplitBills
{
    public const string ProcessReceiptJob = "split.receipt.process";

    /// <summary>A stored receipt ready to serve: its blob, media type and strong ETag (the content hash).</summary>
    public sealed record ReceiptFile(string Key, string ContentType, string ETag);

    public async Task<SplitResult<ReceiptView>> UploadReceiptAsync(SplitCaller caller, string groupId, string expenseId, Stream body, CancellationToken ct)
    {
        // Who may upload is checked before a byte is stored: a stranger cannot fill the disk.
        var visible = await ReadAsync(async c => await LoadGroupAsync(c, null, caller, groupId, ct) is not null
            && await LoadExpenseAsync(c, null, caller.TenantId, groupId, expenseId, ct) is { deleted_at_us: null }, ct);
        if (!visible) return ExpenseNotFound(expenseId);
        var upload = await blobs.SaveUploadAsync(caller.TenantId, body, options.Value.ReceiptBytesMax, ct);
        if (upload is null)
            return new SplitError(413, "payload_too_large", $"A receipt is at most {options.Value.ReceiptBytesMax} bytes.");
        string? replaced = null;
        var r = await WriteAsync(async (c, tx) =>
        {
            if (await LoadGroupAsync(c, tx, caller, groupId, ct) is null) return GroupNotFound(groupId);
            if (await LoadExpenseAsync(c, tx, caller.TenantId, groupId, expenseId, ct) is not { deleted_at_us: null } e) return ExpenseNotFound(expenseId);
            replaced = e.receipt_upload;
            await c.ExecuteAsync(new CommandDefinition("""
                UPDATE split_expenses SET receipt_status = 1, receipt_reason = NULL, receipt_upload = @upload WHERE tenant_id = @tenant AND group_id = @groupId AND id = @expenseId
                """, new { tenant = caller.TenantId, groupId, expenseId, upload }, tx, cancellationToken: ct));
            await ActivityAsync(c, tx, caller, groupId, "expense", expenseId, "receipt_uploaded", null, null, ct);
            await jobs.EnqueueAsync(c, tx, new JobRequest(caller.TenantId, ProcessReceiptJob,
                JsonSerializer.Serialize(new { group = groupId, expense = expenseId, upload }), Key: upload), ct);
            return SplitResult<ReceiptView>.Ok(new ReceiptView("processing", null, null, null, null));
        }, ct);
        if (r.Error is not null) blobs.Delete(upload);
        else if (replaced is not null) blobs.Delete(replaced);
        return r;
    }

    /// <summary>The job's step: decode, clean, thumbnail, record the outcome on the expense. A newer upload of the same
    /// expense wins: the outcome of an older one is dropped.</summary>
    internal async Task ProcessReceiptAsync(string tenantId, string groupId, string expenseId, string upload, CancellationToken ct)
    {
        byte[]? bytes = null;
        await using (var stream = blobs.OpenRead(upload))
        {
            if (stream is null) return; // processed already, or replaced by a newer upload
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy, ct);
            bytes = copy.ToArray();
        }
        var outcome = ReceiptImages.Process(bytes, options.Value.ReceiptPixelsMax, options.Value.ThumbnailSizePx);
        string? image = null, thumb = null;
        if (outcome.Reason is null)
        {
            image = (await blobs.PutAsync(tenantId, outcome.Image!, outcome.Extension!, ct)).Key;
            thumb = (await blobs.PutAsync(tenantId, outcome.Thumbnail!, outcome.Extension!, ct)).Key;
        }
        else Log.ReceiptRejected(logger, expenseId, outcome.Reason);
        await WriteAsync(async (c, tx) =>
        {
            var e = await LoadExpenseAsync(c, tx, tenantId, groupId, expenseId, ct);
            if (e is null || e.receipt_upload != upload) return SplitResult<bool>.Ok(false);
            await c.ExecuteAsync(new CommandDefinition("""
                UPDATE split_expenses SET receipt_status = @status, receipt_reason = @reason, receipt_upload = NULL, receipt_blob = @image, receipt_thumb = @thumb,
                    receipt_type = @type, receipt_width = @width, receipt_height = @height
                WHERE tenant_id = @tenantId AND group_id = @groupId AND id = @expenseId
                """, new
            {
                tenantId, groupId, expenseId, status = outcome.Reason is null ? ReceiptReady : ReceiptRejectedStatus, reason = outcome.Reason,
                image, thumb, type = outcome.ContentType, width = outcome.Width, height = outcome.Height,
            }, tx, cancellationToken: ct));
            var view = new { group_id = groupId, expense_id = expenseId, status = outcome.Reason is null ? "ready" : "rejected", reason = outcome.Reason,
                content_type = outcome.ContentType, width = outcome.Width, height = outcome.Height };
            await EventAsync(c, tx, tenantId, outcome.Reason is null ? SplitEventTypes.ReceiptReady : SplitEventTypes.ReceiptRejected, expenseId, view, ct);
            return SplitResult<bool>.Ok(true);
        }, ct);
        blobs.Delete(upload);
    }

    /// <summary>The cleaned receipt or its thumbnail, when it is ready.</summary>
    public async Task<SplitResult<ReceiptFile>> GetReceiptAsync(SplitCaller caller, string groupId, string expenseId, bool thumbnail, CancellationToken ct) =>
        await ReadAsync(async c =>
        {
            if (await LoadGroupAsync(c, null, caller, groupId, ct) is null) return GroupNotFound(groupId);
            if (await LoadExpenseAsync(c, null, caller.TenantId, groupId, expenseId, ct) is not { } e) return ExpenseNotFound(expenseId);
            if (e.receipt_status is null) return SplitError.NotFound("receipt_not_found", "This expense has no receipt.");
            if (e.receipt_status != ReceiptReady)
                return new SplitError(409, "receipt_not_ready", e.receipt_status == ReceiptProcessing
                    ? "The receipt is still being processed; try again shortly."
                    : $"The receipt was rejected: {e.receipt_reason}");
            var key = thumbnail ? e.receipt_thumb! : e.receipt_blob!;
            return SplitResult<ReceiptFile>.Ok(new ReceiptFile(key, e.receipt_type!, "\"" + ReceiptStore.HashOf(key) + "\""));
        }, ct);

    internal Stream? OpenReceipt(ReceiptFile file) => blobs.OpenRead(file.Key);
}

/// <summary>Decoding and re-encoding receipt images with SkiaSharp.</summary>
public static class ReceiptImages
{
    public sealed record Outcome(string? Reason, byte[]? Image = null, byte[]? Thumbnail = null, string? Extension = null, string? ContentType = null,
        int? Width = null, int? Height = null);

    public static Outcome Process(byte[] data, long pixelsMax, int thumbnailSizePx)
    {
        using var skData = SKData.CreateCopy(data);
        using var codec = SKCodec.Create(skData);
        if (codec is null) return new Outcome("The file is not a JPEG, PNG or WebP image: it could not be decoded.");
        var (format, extension, contentType, quality) = codec.EncodedFormat switch
        {
            SKEncodedImageFormat.Jpeg => (SKEncodedImageFormat.Jpeg, "jpg", "image/jpeg", 90),
            SKEncodedImageFormat.Png => (SKEncodedImageFormat.Png, "png", "image/png", 100),
            SKEncodedImageFormat.Webp => (SKEncodedImageFormat.Webp, "webp", "image/webp", 90),
            var other => (other, "", "", 0),
        };
        if (extension.Length == 0) return new Outcome($"A {codec.EncodedFormat} image: only JPEG, PNG and WebP are accepted.");
        if ((long)codec.Info.Width * codec.Info.Height > pixelsMax)
            return new Outcome($"The image is {codec.Info.Width}x{codec.Info.Height} pixels; at most {pixelsMax} pixels are accepted.");
        using var decoded = SKBitmap.Decode(codec);
        if (decoded is null) return new Outcome("The image data is corrupt: it could not be decoded.");
        var oriented = Orient(decoded, codec.EncodedOrigin);
        try
        {
            var image = Encode(oriented, format, quality);
            var scale = Math.Min(1.0, (double)thumbnailSizePx / Math.Max(oriented.Width, oriented.Height));
            var info = new SKImageInfo(Math.Max(1, (int)Math.Round(oriented.Width * scale)), Math.Max(1, (int)Math.Round(oriented.Height * scale)),
                oriented.ColorType, oriented.AlphaType);
            using var small = oriented.Resize(info, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
            var thumbnail = small is null ? null : Encode(small, format, Math.Min(quality, 80));
            if (image is null || thumbnail is null) return new Outcome("The image could not be re-encoded.");
            return new Outcome(null, image, thumbnail, extension, contentType, oriented.Width, oriented.Height);
        }
        finally
        {
            if (!ReferenceEquals(oriented, decoded)) oriented.Dispose();
        }
    }

    static byte[]? Encode(SKBitmap bitmap, SKEncodedImageFormat format, int quality)
    {
        using var image = SKImage.FromBitmap(bitmap);
        using var encoded = image.Encode(format, quality);
        return encoded?.ToArray();
    }

    /// <summary>Applies the EXIF orientation to the pixels: the metadata that carried it is dropped by re-encoding.</summary>
    static SKBitmap Orient(SKBitmap source, SKEncodedOrigin origin)
    {
        if (origin == SKEncodedOrigin.TopLeft) return source;
        var swap = origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
        var result = new SKBitmap(swap ? source.Height : source.Width, swap ? source.Width : source.Height, source.ColorType, source.AlphaType);
        using var canvas = new SKCanvas(result);
        float w = result.Width, h = result.Height;
        switch (origin)
        {
            case SKEncodedOrigin.TopRight: canvas.Translate(w, 0); canvas.Scale(-1, 1); break;
            case SKEncodedOrigin.BottomRight: canvas.Translate(w, h); canvas.RotateDegrees(180); break;
            case SKEncodedOrigin.BottomLeft: canvas.Translate(0, h); canvas.Scale(1, -1); break;
            case SKEncodedOrigin.LeftTop: canvas.RotateDegrees(90); canvas.Scale(1, -1); break;
            case SKEncodedOrigin.RightTop: canvas.Translate(w, 0); canvas.RotateDegrees(90); break;
            case SKEncodedOrigin.RightBottom: canvas.Translate(w, h); canvas.RotateDegrees(90); canvas.Scale(-1, 1); break;
            case SKEncodedOrigin.LeftBottom: canvas.Translate(0, h); canvas.RotateDegrees(270); break;
        }
        canvas.DrawBitmap(source, 0, 0);
        return result;
    }
}

/// <summary>Runs <see cref="SplitBills.ProcessReceiptAsync"/> for one upload.</summary>
// SplitBills is resolved when the job runs: it enqueues jobs itself, and the job store is built from every handler.
public sealed class ProcessReceiptJob(IServiceProvider services) : IJobHandler
{
    SplitBills Splits => services.GetRequiredService<SplitBills>();

    public string Type => SplitBills.ProcessReceiptJob;

    // Decoding is CPU and memory heavy: two at a time across the cluster keeps the API responsive.
    public JobTypeDefaults Defaults => new() { ConcurrencyMax = 2, AttemptsMax = 3 };

    public async Task ExecuteAsync(JobExecution job, CancellationToken ct)
    {
        using var payload = JsonDocument.Parse(job.Payload);
        var p = payload.RootElement;
        await Splits.ProcessReceiptAsync(job.TenantId, p.GetProperty("group").GetString()!, p.GetProperty("expense").GetString()!,
            p.GetProperty("upload").GetString()!, ct);
    }
}
