namespace Neraca.Tests.Infrastructure;

/// <summary>Test classes that start clusters of server processes, kill them or restart them. They run one class at a
/// time (beside the light tests): on two cores, two of them at once starve each other's processes past every readiness
/// and delivery deadline, which is a test-machine failure, not the behaviour under test.</summary>
[CollectionDefinition(Name)]
public sealed class ServerProcesses
{
    public const string Name = "server processes";
}
