//! The [`HttpClient`] port over the Workers `fetch`, with a timeout so a hung peer cannot hold
//! the queue.

use std::time::Duration;

use futures_util::future::{select, Either};
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

use crate::ports::{HttpClient, HttpRequest, HttpResponse};

pub struct WorkerHttp {
    pub timeout: Duration,
}

fn method(m: &str) -> Method {
    match m {
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        _ => Method::Get,
    }
}

impl HttpClient for WorkerHttp {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, String> {
        let headers = Headers::new();
        for (k, v) in &req.headers {
            headers.set(k, v).map_err(|e| e.to_string())?;
        }
        let mut init = RequestInit::new();
        init.with_method(method(req.method)).with_headers(headers);
        if let Some(b) = &req.body {
            init.with_body(Some(b.as_str().into()));
        }
        let request = Request::new_with_init(&req.url, &init).map_err(|e| e.to_string())?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let call = Box::pin(async move {
            let mut resp = Fetch::Request(request).send_with_signal(&signal).await.map_err(|e| e.to_string())?;
            let status = resp.status_code();
            let headers: Vec<(String, String)> = resp.headers().entries().collect();
            let body = resp.text().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(HttpResponse { status, headers, body })
        });
        let timer = Box::pin(Delay::from(self.timeout));
        match select(call, timer).await {
            Either::Left((result, _)) => result,
            Either::Right(_) => {
                controller.abort();
                Err(format!("no answer within {} s", self.timeout.as_secs()))
            }
        }
    }
}
