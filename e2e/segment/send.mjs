// Sends a small shop session to a shoplens collector with Segment's Node client, then flushes.
// Usage: SHOPLENS_URL=http://127.0.0.1:PORT SHOPLENS_WRITE_KEY=KEY node send.mjs
// Prints one JSON line: {"sent": N, "failed": N}.
import { Analytics } from '@segment/analytics-node'

const analytics = new Analytics({
  writeKey: process.env.SHOPLENS_WRITE_KEY,
  host: process.env.SHOPLENS_URL,
  flushAt: 5,
  flushInterval: 200,
})
let sent = 0
let failed = 0
analytics.on('error', () => { failed += 1 })
const done = () => { sent += 1 }
const user = 'node-user-1'
const anon = 'node-anon-1'
analytics.identify({ userId: user, traits: { email: 'ada@example.com', plan: 'gold' } }, done)
analytics.page({ anonymousId: anon, name: 'Home', properties: { path: '/' } }, done)
analytics.track({ anonymousId: anon, event: 'Product Viewed', properties: { product_id: 'sku-1', price: 19.99, category: 'shoes' } }, done)
analytics.track({ userId: user, event: 'Product Added', properties: { product_id: 'sku-1', price: 19.99, quantity: 2 } }, done)
analytics.track({ userId: user, event: 'Checkout Started', properties: { order_id: 'node-o-1' } }, done)
analytics.track({
  userId: user,
  event: 'Order Completed',
  properties: { order_id: 'node-o-1', total: 44.98, subtotal: 39.98, shipping: 5, currency: 'USD',
    products: [{ product_id: 'sku-1', quantity: 2, price: 19.99 }] },
}, done)
analytics.track({ userId: user, event: 'Experiment Viewed', properties: { experiment_id: 'node-exp', variation_name: 'treatment' } }, done)
analytics.track({ userId: user, event: 'Product Reviewed', properties: { product_id: 'sku-1', rating: 5, review_body: 'fits well' } }, done)
analytics.alias({ userId: user, previousId: anon }, done)
analytics.group({ userId: user, groupId: 'team-1', traits: { name: 'Team' } }, done)
await analytics.closeAndFlush({ timeout: 20000 })
console.log(JSON.stringify({ sent, failed }))
