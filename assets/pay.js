// pay.js: the order page's payment. Mounts Stripe's Payment Element with the PaymentIntent's
// client secret (both given by the page as data attributes: no inline script) and confirms
// the payment; Stripe then returns the buyer to the order page, which asks Stripe for the
// outcome itself. A stand-in Stripe.js without the Payment Element (localstripe's, in tests)
// gets a card element and confirmCardPayment instead.
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
  form.addEventListener('submit', async function (event) {
    event.preventDefault();
    const button = form.querySelector('button');
    button.disabled = true;
    message.textContent = '';
    const result = paymentElement
      ? await stripe.confirmPayment({ elements, confirmParams: { return_url: form.dataset.returnUrl } })
      : await stripe.confirmCardPayment(clientSecret, { payment_method: { card: element } });
    if (result.error) {
      message.textContent = result.error.message || 'The payment did not go through.';
      button.disabled = false;
    } else {
      window.location.assign(form.dataset.returnUrl);
    }
  });
})();
