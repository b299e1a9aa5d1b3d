using Neraca.Bench;

if (args is ["cache", .. var cacheArgs]) return await CacheReadBench.RunAsync(cacheArgs, CancellationToken.None);
if (args is ["reconciliation", .. var reconArgs]) return await ReconciliationScenario.RunAsync(reconArgs, CancellationToken.None);
if (args is ["banking", .. var bankingArgs]) return await BankingScenario.RunAsync(bankingArgs, CancellationToken.None);

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    await Console.Error.WriteLineAsync(e.Message);
    await Console.Error.WriteLineAsync(BenchOptions.Usage);
    return 64;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};
return await Benchmark.RunAsync(options, cancel.Token);
