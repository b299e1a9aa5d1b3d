using Neraca.Demo;

namespace Neraca.Tests.Infrastructure;

/// <summary>The test servers' clock is the one the demo tells its history with (src/Neraca.Server/Demo/SimulatedClock.cs,
/// where its remarks are): one implementation, named here for the tests.</summary>
public sealed class TestClock(DateTimeOffset? start = null) : SimulatedClock(start);
