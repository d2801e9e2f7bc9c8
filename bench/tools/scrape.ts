/**
 * A Prometheus stand-in for the metrics-on variant: GET URL every INTERVAL_MS (as a 1 s
 * scrape interval would), until killed or after MAX_SECONDS. Exits 1 at the first scrape
 * that does not answer 200, so a broken endpoint cannot pass for a cheap one. Prints
 * "scraping" after the first good scrape: the bench measures only from then, so neither this
 * process's start-up nor the endpoint's first (cold) collect is charged to a test.
 *   node scrape.js URL INTERVAL_MS MAX_SECONDS
 */
const [url, intervalText, maxText] = process.argv.slice(2);
if (!url) throw new Error('usage: node scrape.js URL INTERVAL_MS MAX_SECONDS');
const interval = Number(intervalText ?? 1000);
const deadline = Date.now() + Number(maxText ?? 3600) * 1000;
let scrapes = 0;

async function scrapeOnce(): Promise<void> {
  const res = await fetch(url!);
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
  scrapes++;
  if (scrapes === 1) process.stdout.write('scraping\n');
}

async function main(): Promise<void> {
  process.on('SIGTERM', () => {
    process.stdout.write(`scraped ${scrapes} times\n`);
    process.exit(0);
  });
  while (Date.now() < deadline) {
    const started = Date.now();
    try {
      await scrapeOnce();
    } catch (err) {
      // The endpoint starts with bpfredir: the first scrapes may find nothing yet.
      if (scrapes > 0) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, interval - (Date.now() - started))));
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`scrape: ${(err as Error).message}\n`);
  process.exit(1);
});
