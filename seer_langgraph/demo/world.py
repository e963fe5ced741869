"""A small, self-contained tool world for the demo, the Studio graphs, notebooks and benchmarks.

A shop database (products, customers, orders) generated from a seed, six tools over it, and a
task generator with twelve kinds of question: six easy (one or two tool calls) and six hard
(three to six calls, values passed from one call to the next). Ground truth is computed from the
database, so every answer can be checked exactly.

Example:
    >>> from seer_langgraph.demo.world import ShopWorld
    >>> world = ShopWorld(seed=1)
    >>> task = world.tasks(1, kinds=["product_price"], seed=3)[0]
    >>> name = task.question.split("'")[1]
    >>> world.tools_by_name()["find_product"].invoke({"name": name})["price"] == float(task.answer)
    True
"""

from __future__ import annotations

import ast
import json
import math
import operator
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from langchain_core.tools import BaseTool, StructuredTool

from ..experience import Step

__all__ = ["KINDS", "ShopWorld", "Task", "safe_calculate"]

_ADJ = ["blue", "red", "green", "steel", "oak", "glass", "silver", "black", "white", "copper", "linen", "bamboo"]
_NOUN = ["kettle", "lamp", "chair", "mug", "backpack", "clock", "blender", "scarf", "desk", "vase", "speaker", "pan"]
_FIRST = ["Ana", "Ben", "Chen", "Dara", "Eli", "Farah", "Goran", "Hana", "Ivo", "Jun", "Kira", "Leo", "Mila", "Noor", "Omar", "Pia"]
_LAST = ["Silva", "Kim", "Novak", "Okafor", "Rossi", "Haddad", "Berg", "Sato", "Lund", "Meyer"]
_CITIES = ["Lisbon", "Oslo", "Porto", "Graz", "Turku", "Ghent", "Lyon", "Bergen", "Malmo", "Split"]
_STATUS = ["pending", "shipped", "delivered", "cancelled"]

_OPS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Pow: operator.pow, ast.Mod: operator.mod,
}


def safe_calculate(expression: str) -> float:
    """Evaluate an arithmetic expression of numbers and + - * / % ** ( ) without ``eval``."""

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            if isinstance(node.op, ast.Pow) and abs(ev(node.right)) > 10:
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.operand))
        raise ValueError(f"only numbers and + - * / % ** ( ) are allowed, got {ast.dump(node)[:60]}")

    if not isinstance(expression, str) or len(expression) > 500:
        raise ValueError("expression must be a string of at most 500 characters")
    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from exc
    return ev(tree)


def _round(x: float) -> float:
    return float(round(x + 0.0, 2))


@dataclass(frozen=True)
class Task:
    """A question with its exact answer, kind and difficulty."""

    id: str
    kind: str
    difficulty: Literal["easy", "hard"]
    question: str
    answer: str
    match: Literal["numeric", "normalized"] = "numeric"
    gold_tools: tuple[str, ...] = ()
    params: tuple[tuple[str, Any], ...] = ()


@dataclass
class _Db:
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)


KINDS: dict[str, str] = {
    "product_price": "easy",
    "product_stock": "easy",
    "customer_city": "easy",
    "order_status": "easy",
    "order_shipping": "easy",
    "units_cost": "easy",
    "customer_order_count": "hard",
    "order_item_count": "hard",
    "price_difference": "hard",
    "order_value": "hard",
    "latest_order_status": "hard",
    "customer_spend_on_product": "hard",
}


class ShopWorld:
    """The shop: a seeded database and its tools. Same seed, same world."""

    def __init__(self, seed: int = 0, n_products: int = 24, n_customers: int = 16, n_orders: int = 48):
        rng = random.Random(seed)
        self.seed = seed
        self.db = _Db()
        names = rng.sample([f"{a} {n}" for a in _ADJ for n in _NOUN], n_products)
        for i, name in enumerate(names):
            pid = f"P-{101 + i}"
            self.db.products[pid] = {"product_id": pid, "name": name, "price": _round(rng.uniform(3, 120)), "stock": rng.randint(0, 60)}
        people = rng.sample([f"{f} {last}" for f in _FIRST for last in _LAST], n_customers)
        for i, name in enumerate(people):
            cid = f"C-{11 + i}"
            self.db.customers[cid] = {"customer_id": cid, "name": name, "city": rng.choice(_CITIES)}
        cids = list(self.db.customers)
        pids = list(self.db.products)
        for i in range(n_orders):
            oid = f"O-{5001 + i}"
            items = [{"product_id": p, "quantity": rng.randint(1, 5)} for p in rng.sample(pids, rng.randint(1, 3))]
            self.db.orders[oid] = {
                "order_id": oid,
                "customer_id": rng.choice(cids),
                "date": f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}",
                "status": rng.choice(_STATUS),
                "shipping_fee": _round(rng.choice([0, 4.5, 7.25, 9.99])),
                "items": items,
            }

    # -- tools ------------------------------------------------------------------------------
    def _find_product(self, name: str) -> dict[str, Any]:
        key = str(name).strip().lower()
        for p in self.db.products.values():
            if p["name"] == key:
                return dict(p)
        raise ValueError(f"no product named {name!r}; pass the exact product name")

    def _get_product(self, product_id: str) -> dict[str, Any]:
        if product_id not in self.db.products:
            raise ValueError(f"no product with id {product_id!r}; ids look like 'P-101'")
        return dict(self.db.products[product_id])

    def _find_customer(self, name: str) -> dict[str, Any]:
        key = str(name).strip().lower()
        for c in self.db.customers.values():
            if c["name"].lower() == key:
                return dict(c)
        raise ValueError(f"no customer named {name!r}; pass the customer's full name")

    def _list_orders(self, customer_id: str) -> list[dict[str, str]]:
        if customer_id not in self.db.customers:
            raise ValueError(f"no customer with id {customer_id!r}; ids look like 'C-11'")
        orders = [o for o in self.db.orders.values() if o["customer_id"] == customer_id]
        orders.sort(key=lambda o: (o["date"], o["order_id"]))
        return [{"order_id": o["order_id"], "date": o["date"]} for o in orders]

    def _get_order(self, order_id: str) -> dict[str, Any]:
        if order_id not in self.db.orders:
            raise ValueError(f"no order with id {order_id!r}; ids look like 'O-5001'")
        return json.loads(json.dumps(self.db.orders[order_id]))

    def tools(self) -> list[BaseTool]:
        """The six tools, as LangChain tools bound to this world."""
        return [
            StructuredTool.from_function(self._find_product, name="find_product", description="Look up a product by its exact name. Returns product_id, name, price (per unit) and stock."),
            StructuredTool.from_function(self._get_product, name="get_product", description="Look up a product by its id (e.g. 'P-101'). Returns product_id, name, price (per unit) and stock."),
            StructuredTool.from_function(self._find_customer, name="find_customer", description="Look up a customer by full name. Returns customer_id, name and city."),
            StructuredTool.from_function(self._list_orders, name="list_orders", description="List a customer's orders by customer_id (e.g. 'C-11'), oldest first: order_id and date."),
            StructuredTool.from_function(self._get_order, name="get_order", description="Look up an order by id (e.g. 'O-5001'). Returns customer_id, date, status, shipping_fee and items (product_id, quantity)."),
            StructuredTool.from_function(lambda expression: safe_calculate(expression), name="calculator", description="Evaluate an arithmetic expression with numbers and + - * / ( ), e.g. '3 * 4.5 + 2'."),
        ]

    def tools_by_name(self) -> dict[str, BaseTool]:
        return {t.name: t for t in self.tools()}

    # -- tasks ------------------------------------------------------------------------------
    def _customer_with_orders(self, rng: random.Random, at_least: int = 1) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for o in self.db.orders.values():
            counts[o["customer_id"]] = counts.get(o["customer_id"], 0) + 1
        ok = sorted(c for c, n in counts.items() if n >= at_least)
        return self.db.customers[rng.choice(ok)]

    def _make(self, kind: str, rng: random.Random) -> tuple[str, str, str, tuple[str, ...], dict[str, Any]]:
        P, O = self.db.products, self.db.orders
        p = P[rng.choice(sorted(P))]
        o = O[rng.choice(sorted(O))]
        if kind == "product_price":
            return f"What is the unit price of the product '{p['name']}'?", str(p["price"]), "numeric", ("find_product",), {"product": p["name"]}
        if kind == "product_stock":
            return f"How many units of '{p['name']}' are in stock?", str(p["stock"]), "numeric", ("find_product",), {"product": p["name"]}
        if kind == "customer_city":
            c = self.db.customers[rng.choice(sorted(self.db.customers))]
            return f"In which city does the customer '{c['name']}' live?", c["city"], "normalized", ("find_customer",), {"customer": c["name"]}
        if kind == "order_status":
            return f"What is the status of order {o['order_id']}?", o["status"], "normalized", ("get_order",), {"order": o["order_id"]}
        if kind == "order_shipping":
            return f"What shipping fee was charged on order {o['order_id']}?", str(o["shipping_fee"]), "numeric", ("get_order",), {"order": o["order_id"]}
        if kind == "units_cost":
            n = rng.randint(2, 9)
            return f"How much do {n} units of '{p['name']}' cost?", str(_round(n * p["price"])), "numeric", ("find_product", "calculator"), {"product": p["name"], "n": n}
        if kind == "customer_order_count":
            c = self._customer_with_orders(rng)
            n = sum(1 for x in O.values() if x["customer_id"] == c["customer_id"])
            return f"How many orders has the customer '{c['name']}' placed?", str(n), "numeric", ("find_customer", "list_orders"), {"customer": c["name"]}
        if kind == "order_item_count":
            n = sum(i["quantity"] for i in o["items"])
            return f"How many units in total (all items) are in order {o['order_id']}?", str(n), "numeric", ("get_order", "calculator"), {"order": o["order_id"]}
        if kind == "price_difference":
            q = P[rng.choice(sorted(set(P) - {p["product_id"]}))]
            d = _round(abs(p["price"] - q["price"]))
            return f"By how much does the unit price of '{p['name']}' differ from that of '{q['name']}'?", str(d), "numeric", ("find_product", "find_product", "calculator"), {"product": p["name"], "other": q["name"]}
        if kind == "order_value":
            total = _round(sum(i["quantity"] * P[i["product_id"]]["price"] for i in o["items"]) + o["shipping_fee"])
            chain = ("get_order",) + ("get_product",) * len(o["items"]) + ("calculator",)
            return f"What is the total value of order {o['order_id']}: every item's quantity times its unit price, plus the shipping fee?", str(total), "numeric", chain, {"order": o["order_id"]}
        if kind == "latest_order_status":
            c = self._customer_with_orders(rng)
            latest = self._list_orders(c["customer_id"])[-1]["order_id"]
            return f"What is the status of the most recent order of '{c['name']}'?", O[latest]["status"], "normalized", ("find_customer", "list_orders", "get_order"), {"customer": c["name"]}
        if kind == "customer_spend_on_product":
            c = self._customer_with_orders(rng)
            orders = [x for x in O.values() if x["customer_id"] == c["customer_id"]]
            first = min(orders, key=lambda x: (x["date"], x["order_id"]))
            item = first["items"][0]
            prod = P[item["product_id"]]
            value = _round(item["quantity"] * prod["price"])
            return (
                f"In the oldest order of '{c['name']}', what did the first listed item cost in total (its quantity times its unit price)?",
                str(value), "numeric", ("find_customer", "list_orders", "get_order", "get_product", "calculator"),
                {"customer": c["name"]},
            )
        raise ValueError(f"unknown task kind {kind!r}; known kinds: {sorted(KINDS)}")

    def tasks(self, n_per_kind: int, *, kinds: list[str] | None = None, seed: int = 0) -> list[Task]:
        """``n_per_kind`` tasks of each kind (all twelve by default), deterministic for a seed."""
        rng = random.Random(f"{self.seed}/{seed}")
        out = []
        for kind in kinds or list(KINDS):
            if kind not in KINDS:
                raise ValueError(f"unknown task kind {kind!r}; known kinds: {sorted(KINDS)}")
            seen: set[str] = set()
            tries = 0
            while sum(t.kind == kind for t in out) < n_per_kind and tries < 200:
                tries += 1
                q, a, match, chain, params = self._make(kind, rng)
                if q in seen:
                    continue
                seen.add(q)
                out.append(Task(id=f"{kind}-{seed}-{len(seen)}", kind=kind, difficulty=KINDS[kind], question=q, answer=a, match=match, gold_tools=chain, params=tuple(params.items())))  # type: ignore[arg-type]
        return out

    def expert_solution(self, task: Task) -> tuple[list[Step], str]:
        """Solve ``task`` the way a careful person would, calling the real tools.

        Returns the steps (tool, arguments, observation) and the answer. This is the "human
        teacher" of the demo's optional import mode, and the check that every kind is solvable.
        """
        tools = self.tools_by_name()
        p = dict(task.params)
        steps: list[Step] = []

        def call(tool: str, /, **args: Any) -> Any:
            out = tools[tool].invoke(args)
            steps.append(Step(tool=tool, args=args, observation=json.dumps(out) if not isinstance(out, str) else out))
            return out

        def calc(expr: str) -> str:
            return f"{_round(call('calculator', expression=expr)):g}"

        k = task.kind
        if k in ("product_price", "product_stock"):
            prod = call("find_product", name=p["product"])
            answer = str(prod["price"] if k == "product_price" else prod["stock"])
        elif k == "customer_city":
            answer = call("find_customer", name=p["customer"])["city"]
        elif k in ("order_status", "order_shipping"):
            order = call("get_order", order_id=p["order"])
            answer = str(order["status"] if k == "order_status" else order["shipping_fee"])
        elif k == "units_cost":
            prod = call("find_product", name=p["product"])
            answer = calc(f"{p['n']} * {prod['price']}")
        elif k == "customer_order_count":
            cust = call("find_customer", name=p["customer"])
            answer = str(len(call("list_orders", customer_id=cust["customer_id"])))
        elif k == "order_item_count":
            order = call("get_order", order_id=p["order"])
            answer = calc(" + ".join(str(i["quantity"]) for i in order["items"]))
        elif k == "price_difference":
            a = call("find_product", name=p["product"])
            b = call("find_product", name=p["other"])
            answer = calc(f"{max(a['price'], b['price'])} - {min(a['price'], b['price'])}")
        elif k == "order_value":
            order = call("get_order", order_id=p["order"])
            parts = [f"{i['quantity']} * {call('get_product', product_id=i['product_id'])['price']}" for i in order["items"]]
            answer = calc(" + ".join(parts + [str(order["shipping_fee"])]))
        elif k == "latest_order_status":
            cust = call("find_customer", name=p["customer"])
            latest = call("list_orders", customer_id=cust["customer_id"])[-1]["order_id"]
            answer = call("get_order", order_id=latest)["status"]
        elif k == "customer_spend_on_product":
            cust = call("find_customer", name=p["customer"])
            oldest = call("list_orders", customer_id=cust["customer_id"])[0]["order_id"]
            item = call("get_order", order_id=oldest)["items"][0]
            price = call("get_product", product_id=item["product_id"])["price"]
            answer = calc(f"{item['quantity']} * {price}")
        else:
            raise ValueError(f"unknown task kind {k!r}")
        return steps, answer

    def intents(self) -> dict[str, str]:
        """An intent label set for this world (task families)."""
        return {
            "product_lookup": "price or stock of a product",
            "customer_lookup": "where a customer lives, or their orders",
            "order_lookup": "status, fee or contents of an order",
            "arithmetic": "a cost, total, count or difference that needs calculation",
        }
