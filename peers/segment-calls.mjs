// The calls both Segment peers send, as a new integrator would: an
// anonymous visit, the identify that ties it to the user, an order, a
// screen, a group and an alias, plus one identify Rapport must refuse
// (a bad e-mail) without losing the rest of its batch. prefix keeps the
// ids of each peer apart in one database.
export function segmentCalls(prefix) {
  const user = `${prefix}-u1`;
  const anon = `${prefix}-anon`;
  return [
    ['track', { anonymousId: anon, event: 'Product Viewed', properties: { product_id: 'p1', price: 10 } }],
    ['page', { anonymousId: anon, name: 'Pricing', properties: { url: 'https://shop.example/pricing' } }],
    ['identify', { userId: user, anonymousId: anon, traits: { email: `${prefix}@example.com`, name: 'Ann Lee' } }],
    ['identify', { userId: `${prefix}-bad`, traits: { email: 'not-an-email' } }],
    ['track', {
      userId: user, event: 'Order Completed',
      properties: { order_id: `${prefix}-o1`, revenue: 30, currency: 'usd', products: [{ product_id: 'p1', price: 10, quantity: 3 }] },
    }],
    ['screen', { userId: user, name: 'Home', properties: { category: 'app' } }],
    ['group', { userId: user, groupId: `${prefix}-acme`, traits: { plan: 'pro' } }],
    ['alias', { userId: user, previousId: `${prefix}-old` }],
  ];
}

// args reads `node <script> <url> <writeKey> <prefix>`.
export function args() {
  const [url, writeKey, prefix] = process.argv.slice(2);
  if (!url || !writeKey || !prefix) {
    console.error('usage: node <script> <rapport url> <write key> <id prefix>');
    process.exit(2);
  }
  return { url, writeKey, prefix };
}
