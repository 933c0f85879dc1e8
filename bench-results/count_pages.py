# Times a Select=COUNT Scan of 50k ~200-byte items on DynamoDB Local: Limit 100, 1000, none.
import os, time, boto3
ddb = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"], region_name="us-east-1",
                   aws_access_key_id="x", aws_secret_access_key="x")
t = "countbench"
ddb.create_table(TableName=t, AttributeDefinitions=[{"AttributeName":"id","AttributeType":"S"}],
                 KeySchema=[{"AttributeName":"id","KeyType":"HASH"}], BillingMode="PAY_PER_REQUEST")
N = 50000
for b in range(0, N, 25):
    ddb.batch_write_item(RequestItems={t: [{"PutRequest":{"Item":{"id":{"S":f"k{i:06}"},"note":{"S":"x"*180},"n":{"N":str(i%100)}}}} for i in range(b, b+25)]})
def count(limit, segments=4):
    total, pages, t0 = 0, 0, time.time()
    for seg in range(segments):
        start = None
        while True:
            kw = dict(TableName=t, Select="COUNT", Segment=seg, TotalSegments=segments,
                      FilterExpression="n >= :a", ExpressionAttributeValues={":a":{"N":"50"}})
            if limit: kw["Limit"] = limit
            if start: kw["ExclusiveStartKey"] = start
            out = ddb.scan(**kw); total += out["Count"]; pages += 1
            start = out.get("LastEvaluatedKey")
            if not start: break
    return total, pages, time.time() - t0
for rep in range(2):
    for limit in (100, 1000, None):
        c, p, s = count(limit)
        print(f"rep {rep} Limit {limit}: count {c}, {p} pages, {s:.2f} s")
