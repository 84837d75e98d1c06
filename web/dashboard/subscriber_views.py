"""Webhook subscribers (admins): adding one (its signing secret and confirmation key shown once),
rotating the secret, disabling and enabling; each subscriber's deliveries by state; the
dead-letter list, redelivered with the same id."""

from urllib.parse import urlsplit, urlunsplit

from flask import abort, flash, redirect, render_template, request, url_for

from rights.recipients import webhooks
from storage.recipients import RECIPIENTS
from web.actions import attempt
from web.dashboard import actor, bp, requires
from web.dashboard.forms import (
    ConfirmForm,
    DeliveryFilterForm,
    SubscriberForm,
    SubscriberRecipientForm,
)


@bp.app_template_filter("masked_url")
def masked_url(url: str) -> str:
    """A receiver's URL without its query (receivers put tokens there): for those who may
    read the webhook pages but not manage them."""
    parts = urlsplit(url or "")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "…" if parts.query else "", ""))


def _subscriber(subscriber_id: int):
    subscriber = webhooks.get(subscriber_id)
    if subscriber is None:
        abort(404)
    return subscriber


@bp.get("/subscribers")
@requires("settings.read")
def subscribers_page():
    return _subscribers(SubscriberForm())


def _subscribers(form, status=200):
    return render_template(
        "dashboard/subscribers.html",
        form=form,
        rows=webhooks.overview(),
        always=webhooks.ALWAYS,
        confirm=ConfirmForm(),
        recipients=RECIPIENTS,
    ), status


@bp.post("/subscribers")
@requires("subscribers.manage")
def subscriber_create():
    form = SubscriberForm()
    if form.validate_on_submit():
        added = attempt(
            lambda: webhooks.add(
                form.name.data,
                form.url.data.strip(),
                sorted(form.events.data),
                actor=actor(),
                recipient=form.recipient.data or None,
            ),
            form=form,
        )
        if added:
            subscriber, secret, key = added.value
            return render_template(
                "dashboard/subscriber_secret.html", subscriber=subscriber, secret=secret, key=key
            )
    return _subscribers(form, 422)


@bp.post("/subscribers/<int(max=2147483647):subscriber_id>/rotate")
@requires("subscribers.manage")
def subscriber_rotate(subscriber_id: int):
    subscriber = _subscriber(subscriber_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    secret = webhooks.rotate_secret(subscriber, actor=actor())
    return render_template(
        "dashboard/subscriber_secret.html", subscriber=subscriber, secret=secret, key=None
    )


@bp.post("/subscribers/<int(max=2147483647):subscriber_id>/active")
@requires("subscribers.manage")
def subscriber_toggle(subscriber_id: int):
    subscriber = _subscriber(subscriber_id)
    # The state asked for, not a toggle: a second click or a stale page changes nothing.
    wanted = request.form.get("active")
    if not ConfirmForm().validate_on_submit() or wanted not in ("0", "1"):
        abort(400)
    if (wanted == "1") == subscriber.active:
        return redirect(url_for("dashboard.subscriber_page", subscriber_id=subscriber.id), code=303)
    resumed = webhooks.set_active(subscriber, wanted == "1", actor=actor())
    if subscriber.active:
        flash(f"{subscriber.name} is enabled; {resumed} stopped deliveries are back in line.")
    else:
        flash(f"{subscriber.name} is disabled: nothing more is sent to it until it is enabled.")
    return redirect(url_for("dashboard.subscriber_page", subscriber_id=subscriber.id), code=303)


@bp.post("/subscribers/<int(max=2147483647):subscriber_id>/recipient")
@requires("subscribers.manage")
def subscriber_recipient(subscriber_id: int):
    """Say which recipient of the data map the subscriber speaks for (or none: undone the
    same way)."""
    subscriber = _subscriber(subscriber_id)
    form = SubscriberRecipientForm()
    if form.validate_on_submit():
        changed = attempt(
            lambda: webhooks.set_recipient(subscriber, form.recipient.data, actor=actor()),
            form=form,
        )
        if changed:
            said = RECIPIENTS[subscriber.recipient].name if subscriber.recipient else "nobody"
            flash(f"{subscriber.name} now speaks for: {said}.")
            return redirect(
                url_for("dashboard.subscriber_page", subscriber_id=subscriber.id), code=303
            )
    return _deliveries(
        "dashboard/subscriber.html", subscriber=_subscriber(subscriber_id), recipient_form=form
    ), 422


@bp.get("/subscribers/<int(max=2147483647):subscriber_id>")
@requires("settings.read")
def subscriber_page(subscriber_id: int):
    subscriber = _subscriber(subscriber_id)
    return _deliveries("dashboard/subscriber.html", subscriber=subscriber)


@bp.get("/deliveries/failed")
@requires("settings.read")
def dead_letters_page():
    return _deliveries("dashboard/dead_letters.html", state="failed")


def _deliveries(template: str, *, subscriber=None, state=None, recipient_form=None):
    form = DeliveryFilterForm(formdata=request.args)
    if not form.validate():
        abort(422)
    state = state or form.state.data or None
    page, labels = webhooks.deliveries(
        subscriber_id=subscriber.id if subscriber else None, state=state, page=form.page.data or 1
    )
    return render_template(
        template,
        subscriber=subscriber,
        form=form,
        page=page,
        labels=labels,
        states=webhooks.STATES,
        confirm=ConfirmForm(),
        recipients=RECIPIENTS,
        recipient_form=recipient_form
        or (
            SubscriberRecipientForm(formdata=None, recipient=subscriber.recipient or "")
            if subscriber is not None
            else None
        ),
        # A subscriber's pages are its GET page, also under a refused change of its recipient.
        page_url=lambda n: url_for(
            "dashboard.subscriber_page" if subscriber is not None else request.endpoint,
            page=n,
            **(request.view_args or {}),
            **_state_arg(subscriber, state),
        ),
    )


def _state_arg(subscriber, state) -> dict:
    return {"state": state} if subscriber is not None and state else {}


@bp.post("/deliveries/<delivery_id>/redeliver")
@requires("subscribers.manage")
def delivery_redeliver(delivery_id: str):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    redelivered = attempt(
        lambda: webhooks.redeliver(delivery_id, actor=actor()),
        flash_error=True,
        not_found_is_404=True,
    )
    if redelivered:
        flash(f"Delivery {redelivered.value.id} is back in line, with the same id.")
    return redirect(url_for("dashboard.dead_letters_page"), code=303)
