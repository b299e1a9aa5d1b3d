using Microsoft.Extensions.Time.Testing;
using Neraca.Jobs;
using Neraca.Storage;
using Neraca.Tests.Infrastructure;

namespace Neraca.Tests.Jobs;

public sealed class SchedulerTests
{
    static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task Three_schedulers_over_ten_minutes_of_a_minute_cron_produce_exactly_ten_runs(StoreKind kind)
    {
        await using var rig = await JobRig.CreateAsync(kind);
        await rig.ExecuteAsync(RecorderJob.CreateTable);
        var time = new FakeTimeProvider(JobRig.Start); // 00:00:30
        RecurringJob[] schedule = [new("test.minutely", RecorderJob.TypeName, "* * * * *")];
        var replicas = Enumerable.Range(0, 3)
            .Select(_ => rig.Replica(time, [new RecorderJob(rig.Admin)], o => o.SchedulerIntervalMs = 15_000, schedule))
            .ToList();

        using var stop = new CancellationTokenSource();
        var loops = replicas.Select(r => Task.Run(() => r.Scheduler.RunAsync(stop.Token))).ToList();
        await WaitForTicksAsync(replicas, replicas.Select(_ => 0L).ToList());
        for (var step = 0; step < 40; step++) // ten minutes in the schedulers' 15-second steps
        {
            var before = replicas.Select(r => r.Scheduler.Ticks).ToList();
            time.Advance(TimeSpan.FromSeconds(15));
            await WaitForTicksAsync(replicas, before);
        }
        await WaitUntilAsync(async () => await rig.ScalarAsync<long>("SELECT count(*) FROM job_slots") >= 10);
        await stop.CancelAsync();
        await Task.WhenAll(loops).WaitAsync(Wait);

        var expected = Enumerable.Range(1, 10).Select(m => DbTime.ToMicros(new DateTimeOffset(2026, 3, 1, 0, m, 0, TimeSpan.Zero))).ToList();
        Assert.Equal(expected, await rig.QueryAsync<long>("SELECT slot_us FROM job_slots WHERE schedule = 'test.minutely' ORDER BY slot_us"));
        Assert.Equal(expected, await rig.QueryAsync<long>("SELECT slot_us FROM jobs WHERE schedule = 'test.minutely' ORDER BY slot_us"));

        // Workers on all three replicas drain the queue: each slot runs once.
        while (true)
        {
            var ran = await Task.WhenAll(replicas.Select(r => r.Worker.TryRunNextAsync(CancellationToken.None)));
            if (!ran.Any(x => x)) break;
        }
        Assert.Equal(expected, await rig.QueryAsync<long>("SELECT slot_us FROM recorded_runs ORDER BY slot_us"));
        Assert.Equal(10L, await rig.ScalarAsync<long>("SELECT count(*) FROM job_runs WHERE result = 1"));
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task Per_tenant_schedule_spreads_tenants_over_the_window_at_stable_offsets(StoreKind kind)
    {
        await using var rig = await JobRig.CreateAsync(kind);
        await rig.ExecuteAsync(RecorderJob.CreateTable);
        var tenants = Enumerable.Range(0, 40).Select(i => $"tenant-{i:D2}").ToList();
        foreach (var t in tenants)
            await rig.ExecuteAsync("INSERT INTO tenants (id, name, created_at) VALUES (@t, @t, @at)", new { t, at = JobRig.Start });
        var window = TimeSpan.FromHours(2);
        RecurringJob[] schedule = [new("test.nightly", RecorderJob.TypeName, "0 2 * * *", RecurringScope.PerTenant) { TimeZone = "Asia/Jakarta", SpreadWindow = window }];
        // 18:59 UTC is 01:59 in Jakarta (UTC+7): the 02:00 slot is a minute away.
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 1, 18, 59, 0, TimeSpan.Zero));
        var a = rig.Replica(time, [new RecorderJob(rig.Admin)], schedules: schedule);
        var b = rig.Replica(time, [new RecorderJob(rig.Admin)], schedules: schedule);
        await a.Scheduler.RegisterSchedulesAsync(CancellationToken.None);
        Assert.Equal(0, await a.Scheduler.TickAsync(CancellationToken.None));

        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(1, await a.Scheduler.TickAsync(CancellationToken.None));
        Assert.Equal(0, await b.Scheduler.TickAsync(CancellationToken.None));

        var slot = new DateTimeOffset(2026, 3, 1, 19, 0, 0, TimeSpan.Zero);
        var jobs = await rig.QueryAsync<(string Tenant, long Due)>("SELECT tenant_id, due_at_us FROM jobs ORDER BY tenant_id");
        Assert.Equal(tenants, jobs.Select(j => j.Tenant));
        foreach (var (tenant, due) in jobs)
        {
            var offset = DbTime.FromMicros(due) - slot;
            Assert.Equal(Spread.Offset("test.nightly", tenant, window), offset);
            Assert.InRange(offset, TimeSpan.Zero, window - TimeSpan.FromTicks(1));
        }
        // Spread, not bunched: 40 tenants over 2 hours land in at least 6 of the 8 quarter-hours.
        Assert.True(jobs.Select(j => (DbTime.FromMicros(j.Due) - slot).Ticks / TimeSpan.FromMinutes(15).Ticks).Distinct().Count() >= 6);

        // Nothing runs before its offset; everything has run by the end of the window.
        var early = jobs.Count(j => DbTime.FromMicros(j.Due) <= time.GetUtcNow());
        var ranNow = 0;
        while (await a.Worker.TryRunNextAsync(CancellationToken.None)) ranNow++;
        Assert.Equal(early, ranNow);
        time.Advance(window);
        while (await a.Worker.TryRunNextAsync(CancellationToken.None)) { }
        Assert.Equal(40L, await rig.ScalarAsync<long>("SELECT count(*) FROM recorded_runs"));
    }

    [Fact]
    public void Spread_offset_is_stable_and_inside_the_window()
    {
        var window = TimeSpan.FromMinutes(30);
        var offset = Spread.Offset("audit.verify", "acme", window);
        Assert.Equal(offset, Spread.Offset("audit.verify", "acme", window));
        Assert.InRange(offset, TimeSpan.Zero, window);
        Assert.NotEqual(offset, Spread.Offset("audit.checkpoint", "acme", window));
        Assert.Equal(TimeSpan.Zero, Spread.Offset("audit.verify", "acme", TimeSpan.Zero));
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    public async Task Missed_slots_after_an_outage_are_enqueued_up_to_the_limit(StoreKind kind)
    {
        await using var rig = await JobRig.CreateAsync(kind);
        var time = new FakeTimeProvider(JobRig.Start);
        RecurringJob[] schedule = [new("test.minutely", RecorderJob.TypeName, "* * * * *")];
        var a = rig.Replica(time, [new RecorderJob(rig.Admin)], o => o.MissedSlotsMax = 3, schedule);
        await a.Scheduler.RegisterSchedulesAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromMinutes(10)); // every scheduler was down
        Assert.Equal(3, await a.Scheduler.TickAsync(CancellationToken.None));
        Assert.Equal([8L, 9L, 10L], (await rig.QueryAsync<long>("SELECT slot_us FROM job_slots ORDER BY slot_us"))
            .Select(us => (long)(DbTime.FromMicros(us) - JobRig.Start.AddSeconds(-30)).TotalMinutes));
        Assert.Equal(0, await a.Scheduler.TickAsync(CancellationToken.None));
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task A_slot_already_enqueued_is_never_enqueued_again_even_when_the_schedule_is_reset(StoreKind kind)
    {
        await using var rig = await JobRig.CreateAsync(kind);
        var time = new FakeTimeProvider(JobRig.Start);
        RecurringJob[] hourly = [new("test.hourly", RecorderJob.TypeName, "0 * * * *")];
        RecurringJob[] other = [new("test.hourly", RecorderJob.TypeName, "30 * * * *")];
        var a = rig.Replica(time, [new RecorderJob(rig.Admin)], schedules: hourly);
        await a.Scheduler.RegisterSchedulesAsync(CancellationToken.None);
        time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(1, await a.Scheduler.TickAsync(CancellationToken.None)); // 01:00

        // A rolling deploy flips the cron away and back; the schedule row is reset to a slot that already ran.
        await rig.Replica(time, [], schedules: other).Scheduler.RegisterSchedulesAsync(CancellationToken.None);
        await rig.ExecuteAsync("UPDATE job_schedules SET next_slot_us = @slot", new { slot = DbTime.ToMicros(new DateTimeOffset(2026, 3, 1, 1, 0, 0, TimeSpan.Zero)) });
        var b = rig.Replica(time, [new RecorderJob(rig.Admin)], schedules: hourly);
        Assert.Equal(0, await b.Scheduler.TickAsync(CancellationToken.None));
        Assert.Equal(1L, await rig.ScalarAsync<long>("SELECT count(*) FROM jobs"));
    }

    static async Task WaitForTicksAsync(List<Replica> replicas, List<long> before)
    {
        // Bounded, not required: a scheduler that was between its tick and its timer when time moved catches up at the next step.
        try
        {
            await Polling.Eventually(() => !replicas.Where((r, i) => r.Scheduler.Ticks <= before[i]).Any(), "every scheduler ticks",
                timeout: TimeSpan.FromSeconds(2), interval: TimeSpan.FromMilliseconds(5));
        }
        catch (TimeoutException)
        {
        }
    }

    static Task WaitUntilAsync(Func<Task<bool>> condition) => Polling.Eventually(condition, "the schedulers record their slots", Wait);
}
