using Neraca.Hosting;

return await NeracaApp.RunAsync(args);
