// pay.js: the order page's payment, given its settings by the page as data attributes (no
// inline script).
//
// With Stripe's own Stripe.js: the Payment Element, and Stripe.js confirms the payment, then
// returns the buyer to the order page, which asks Stripe for the outcome itself.
//
// With a Stripe.js that has no Payment Element (localstripe's stand-in, which the tests load):
// the card element; Stripe.js turns the card typed in into a PaymentMethod (or, where it makes
// none, a token's card), the shop confirms the order's PaymentIntent with it (POST to the
// form's data-pay-url), Stripe.js completes a 3-D Secure step if Stripe asks for one, and the
// buyer goes back to the order page.
(function () {
  const form = document.getElementById('payment-form');
  if (!form || typeof window.Stripe !== 'function') return;
  const message = document.getElementById('payment-message');
  const stripe = window.Stripe(form.dataset.publishableKey);
  const clientSecret = form.dataset.clientSecret;
  const paymentElement = typeof stripe.confirmPayment === 'function';
  const elements = paymentElement ? stripe.elements({ clientSecret }) : stripe.elements();
  const element = elements.create(paymentElement ? 'payment' : 'card');
  element.mount('#payment-element');

  // The id of the card typed into the card element: a PaymentMethod where Stripe.js makes
  // one, else the card of a token.
  async function cardId() {
    const made = await stripe.createPaymentMethod({ type: 'card', card: element });
    if (made && made.error) throw made.error;
    if (made && made.paymentMethod) return made.paymentMethod.id;
    const tokenized = await stripe.createToken(element);
    if (tokenized.error) throw tokenized.error;
    return tokenized.token.card.id;
  }

  // The shop confirms the payment with the card; Stripe.js authenticates the buyer if asked.
  async function payWithCard() {
    const body = new URLSearchParams({ payment_method: await cardId() });
    const response = await fetch(form.dataset.payUrl, { method: 'POST', body, credentials: 'same-origin' });
    const answer = await response.json().catch(function () { return {}; });
    if (response.status === 409) return {};
    if (!response.ok) return { error: { message: answer.message } };
    if (answer.status === 'requires_action') return stripe.confirmCardPayment(clientSecret);
    return {};
  }

  form.addEventListener('submit', async function (event) {
    event.preventDefault();
    const button = form.querySelector('button');
    button.disabled = true;
    message.textContent = '';
    let result;
    try {
      result = paymentElement
        ? await stripe.confirmPayment({ elements, confirmParams: { return_url: form.dataset.returnUrl } })
        : await payWithCard();
    } catch (error) {
      result = { error };
    }
    if (result.error) {
      message.textContent = result.error.message || 'The payment did not go through.';
      button.disabled = false;
    } else {
      // The order page, as it stands now (paid, or still waiting for the webhook).
      window.location.reload();
    }
  });
})();
