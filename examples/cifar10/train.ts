// Placeholder until the CIFAR-10 trainer lands (issue 5): says what `npm run train` will do.
console.log(`npm run train will train SpeedyConvNet on CIFAR-10 with the seed's recipe
(12.1 epochs, batch 1024, base depth 64) on the best backend available, printing the seed's table each epoch.
The trainer is not built yet; see CHANGELOG.md.`);
