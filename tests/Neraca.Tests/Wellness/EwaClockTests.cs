namespace Neraca.Tests.Wellness;

/// <summary>The EWA fixtures' clock (see <see cref="Infrastructure.TestClock"/>'s remarks): an advance whose woken timers run long must
/// not pile clock ticks up on blocked threads. With a thread-pool timer following real time every 5 ms, about a hundred
/// ticks waited on the gate during this half second and the test process starved.</summary>
public sealed class EwaClockTests
{
    [Fact]
    public void A_long_advance_leaves_at_most_the_pump_waiting()
    {
        using var clock = new Infrastructure.TestClock(EwaFixture.Start);
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        // A server timer whose callback runs long inside the advance, as a SQLite-backed sweep does.
        using var timer = clock.Fake.CreateTimer(_ =>
        {
            entered.Set();
            release.Wait(TimeSpan.FromSeconds(10));
        }, null, TimeSpan.FromHours(1), Timeout.InfiniteTimeSpan);
        var jump = new Thread(() => clock.JumpTo(EwaFixture.Start.AddHours(2)));
        jump.Start();
        Assert.True(entered.Wait(TimeSpan.FromSeconds(10)), "the jump did not fire the timer");
        Thread.Sleep(500);
        var waiting = clock.Waiting;
        release.Set();
        jump.Join();
        Assert.InRange(waiting, 0, 1);
        Assert.True(clock.UtcNow >= EwaFixture.Start.AddHours(2));
    }

    [Fact]
    public void The_server_timers_call_back_on_the_thread_pool_not_inside_the_jump()
    {
        using var clock = new Infrastructure.TestClock(EwaFixture.Start);
        using var fired = new ManualResetEventSlim();
        var on = 0;
        using var timer = clock.Time.CreateTimer(_ =>
        {
            on = Environment.CurrentManagedThreadId;
            fired.Set();
        }, null, TimeSpan.FromHours(1), Timeout.InfiniteTimeSpan);
        clock.JumpTo(EwaFixture.Start.AddHours(2));
        Assert.True(fired.Wait(TimeSpan.FromSeconds(10)), "the timer did not fire");
        Assert.NotEqual(Environment.CurrentManagedThreadId, on);
        Assert.True(clock.UtcNow >= EwaFixture.Start.AddHours(2) && clock.UtcNow < EwaFixture.Start.AddHours(2).AddSeconds(10));
    }

    [Fact]
    public void A_paused_clock_stands_still_until_resumed()
    {
        using var clock = new Infrastructure.TestClock(EwaFixture.Start);
        clock.Pause();
        var at = clock.UtcNow;
        Thread.Sleep(100);
        Assert.Equal(at, clock.UtcNow);
        clock.Resume();
        Thread.Sleep(100);
        Assert.True(clock.UtcNow > at);
    }
}
