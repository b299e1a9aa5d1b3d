[assembly: AssemblyFixture(typeof(Neraca.Tests.Infrastructure.InfrastructureLifetime))]
